"""The records a weighted layer's kernel takes: its geometry, its constants and its state arrays.

NamedTuples of scalars or arrays, which numba passes as (named) tuples: the kernel reads fields by name
and its compiled loops are those of plain arguments (benchmarks/bench_stdp.py, before and after).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Geometry(NamedTuple):
    """A conv layer's shapes (an fc layer is a conv with kernel ``(H, W)`` and one output position)."""

    c: int  # input channels C
    h: int  # input height H
    w: int  # input width W
    kh: int  # kernel height KH (output height H - KH + 1)
    kw: int  # kernel width KW (output width W - KW + 1)
    m: int  # maps M (fc: neurons)


class Constants(NamedTuple):
    """What a run of a weighted layer takes besides its state: the rule's constants, and two limits of
    the kernel's bookkeeping that change no result."""

    th_learn: np.float32  # learning threshold, as the smallest float32 >= the configured value
    th_inf: np.float32  # inference threshold, the same way
    r_learn: int  # inter-map WTA radius of learning spikes (>= 0)
    r_inf: int  # inhibition radius of inference spikes (-1: none)
    a_minus: float  # LTD step (<= 0)
    a_plus: float  # LTP amplitude (>= 0)
    beta_plus: float  # LTP damping (>= 0)
    select_max: int  # candidate sets up to this size are searched for their maximum, larger ones sorted
    epoch_limit: int  # the int32 epochs of lazy map resets restart on reaching it


class LayerArrays(NamedTuple):
    """The state a weighted layer's kernel updates in place, in the kernel's layout (``nodes.stdp.kernel``)."""

    w: np.ndarray  # float32, flat (C, KH, KW, M), kernel columns flipped
    v_learn: np.ndarray  # float32, flat (Ho, Wo, M)
    v_inf: np.ndarray  # float32, flat (Ho, Wo, M)
    pos_ref: np.ndarray  # int64 (Ho*Wo,): counter of each position's last inter-map reset
    map_ref: np.ndarray  # int64 (M,): counter of each map's last learning spike
    last_in: np.ndarray  # int64, flat (C, H, W): counter of each input position's last spike
    lazy: np.ndarray  # int32 [epoch, map epochs (M), position epochs (Ho*Wo)]: pending map resets
    counters: np.ndarray  # int64 [n, learning spikes, inference spikes]


#: Spikes between layers: contiguous columns t (int64) and x, y, c (uint16, as in SPIKE_DTYPE), the form
#: the kernels take and return, so that no layer packs or unpacks a structured array.
Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
