"""The live dashboard: a page of the running graph served by the graph itself, that also teaches it.

``node`` (the ``dashboard`` node type), ``state`` (what the page shows), ``server`` (the web server),
``attach`` (the graph transform behind ``--dashboard``), ``static/`` (the page; no CDN, no build step).
"""
