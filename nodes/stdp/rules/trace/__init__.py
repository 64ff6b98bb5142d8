"""Trace-based pair STDP with leaky integrate-and-fire neurons (``rule = "trace"``).

``params`` holds the layer tables, ``kernel`` the numba kernels, ``layer`` the state and its shell.
"""
