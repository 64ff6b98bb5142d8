"""Numba kernels of the N-MNIST (Orchard) 40-bit records: decoding a file, encoding events."""

from __future__ import annotations

import numba
import numpy as np

from recordings.formats.kernels import ERR_BAD_ADDRESS, ERR_NONE

#: Width and height of the N-MNIST sensor crop (ATIS, 34x34).
NMNIST_SIZE = 34


@numba.njit(cache=True)
def nmnist_decode(
    buf: np.ndarray, pos: int, stop: int, out: np.ndarray, state: np.ndarray
) -> tuple[int, int, int, int]:
    """N-MNIST (Orchard) 40-bit records. ``state[0]`` is the timestamp offset added by overflow markers.

    An event with y == 240 is a timestamp-overflow marker: it is not emitted and adds 8192 µs to every
    later timestamp (the rule of Orchard's own reader). Any other address outside the 34x34 sensor is
    ``ERR_BAD_ADDRESS`` (every real N-MNIST file stays inside it).
    """
    cap = out.shape[0]
    n = 0
    offset = state[0]
    while pos + 5 <= stop and n < cap:
        yy = buf[pos + 1]
        if yy == 240:
            offset += 8192
        elif buf[pos] >= NMNIST_SIZE or yy >= NMNIST_SIZE:
            state[0] = offset
            return n, pos, ERR_BAD_ADDRESS, pos
        else:
            b2 = np.int64(buf[pos + 2])
            out[n]["t"] = offset + (((b2 & 0x7F) << 16) | (np.int64(buf[pos + 3]) << 8) | np.int64(buf[pos + 4]))
            out[n]["x"] = buf[pos]
            out[n]["y"] = yy
            out[n]["p"] = b2 >> 7
            n += 1
        pos += 5
    state[0] = offset
    return n, pos, ERR_NONE, 0


@numba.njit(cache=True)
def nmnist_encode(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, out: np.ndarray) -> None:
    """Pack events into N-MNIST 40-bit records (values already range-checked by the caller)."""
    for i in range(t.shape[0]):
        q = i * 5
        tt = t[i]
        out[q] = x[i]
        out[q + 1] = y[i]
        out[q + 2] = (np.int64(p[i]) << 7) | ((tt >> 16) & 0x7F)
        out[q + 3] = (tt >> 8) & 0xFF
        out[q + 4] = tt & 0xFF
