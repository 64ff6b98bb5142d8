"""Dataset synthesis: static digit images turned into event streams, for the dataset sources.

``rate`` makes rate-coded spike trains (thesis 3.3.1), ``saccade`` an N-MNIST-like recording of a digit
moved in three saccades in front of a simulated sensor, ``font_digits`` draws digits when no MNIST files
are at hand.
"""
