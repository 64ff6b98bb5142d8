"""``spikestream sweep``: tune a graph's parameters with Ray Tune, on one machine or a Ray cluster.

A sweep file (``spec``) names a base graph, a search space over its ``--set`` keys and the metric to select
on; each trial runs the graph in process in a Ray worker (``trial``), reports the evaluator's learning curve
while it learns and its results at the end; ``run`` drives Ray Tune and ``report`` writes the table, the
best configuration and the plots.
"""
