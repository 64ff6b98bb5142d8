"""Recordings drawn as video (``spikestream render``): ``kernel`` bins events into frames and paints them,
``frames`` streams a recording through it, ``overlay`` lays a frame out and draws the time, rate and
prediction bars, ``predictions`` reads what a classifier said, ``network`` runs a saved network to say it,
``writer`` keeps frames as MP4 or GIF, ``render`` puts them together and ``cli`` is the command."""
