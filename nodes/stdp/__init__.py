"""Online STDP feature extractor (thesis ch. 3): numba kernels and the ``Network`` that owns their state."""

from nodes.stdp.layers import ConvParams, FcParams, LayerParams, PoolParams
from nodes.stdp.network import Network

__all__ = ["ConvParams", "FcParams", "LayerParams", "Network", "PoolParams"]
