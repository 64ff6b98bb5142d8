"""Numba kernels of the dataset synthesis, one module per family: ``saccade`` (digits moved in front of
a simulated sensor, delta encoded) and ``rate`` (rate-coded spike trains). Only ``@njit`` functions over
plain arrays and scalars live here."""
