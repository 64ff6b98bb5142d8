"""Online STDP feature extractor (thesis ch. 3): numba kernels and the ``Network`` that owns their state."""

from nodes.stdp.network import ConvParams, FcParams, LayerParams, Network, PoolParams

__all__ = ["ConvParams", "FcParams", "LayerParams", "Network", "PoolParams"]
