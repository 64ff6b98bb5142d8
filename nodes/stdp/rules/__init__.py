"""Learning rules other than Thiele's, one folder each, and the registry that names them all.

A rule is its params classes (conv and fc, built on ``nodes.stdp.shapes``), its state and its kernels,
in ``nodes/stdp/rules/<rule>/``; ``registry.py`` maps its name to the function that builds its layers.
Thiele's rule, the first, keeps its historical place (``nodes.stdp.layers``, ``kernel``, ``state``).
"""
