"""Numba kernel: the monotonic unwrap of a 32-bit unsigned tick counter (AEDAT 2.0 and DAT timestamps)."""

from __future__ import annotations

import numba
import numpy as np

_U32_HALF = np.int64(1) << 31
_U32_WRAP = np.int64(1) << 32


@numba.njit(cache=True)
def unwrap32(ts: np.int64, state: np.ndarray) -> np.int64:
    """``ts`` plus the wrap offset so far. ``state[0]`` is the last raw value (-1 = none), ``state[1]`` the
    accumulated wrap offset. A drop of more than half the range counts as one wrap-around; a smaller step
    back is kept as it is (jitter, not a wrap)."""
    last = state[0]
    if last >= 0 and ts < last and last - ts > _U32_HALF:
        state[1] += _U32_WRAP
    state[0] = ts
    unwrapped: np.int64 = state[1] + ts
    return unwrapped
