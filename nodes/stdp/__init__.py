"""Online STDP feature extractor (thesis ch. 3 and other rules): numba kernels and the ``Network`` that owns
their state."""

from nodes.stdp.layers import ConvParams, FcParams, LayerParams, PoolParams
from nodes.stdp.network import Network
from nodes.stdp.rules.trace.params import TraceConvParams, TraceFcParams

__all__ = ["ConvParams", "FcParams", "LayerParams", "Network", "PoolParams", "TraceConvParams", "TraceFcParams"]
