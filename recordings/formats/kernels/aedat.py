"""Numba kernels of the AEDAT formats: AEDAT 2.0 (jAER) address/timestamp words and the polarity events
of AEDAT 3.1 packets."""

from __future__ import annotations

import numba
import numpy as np

from recordings.formats.kernels import ERR_BAD_ADDRESS, ERR_NONE
from recordings.formats.kernels.unwrap import unwrap32

# AEDAT 2.0 address layouts.
LAYOUT_DAVIS = 0
LAYOUT_DVS128 = 1


@numba.njit(cache=True)
def aedat2_decode(
    buf: np.ndarray,
    pos: int,
    stop: int,
    layout: int,
    width: int,
    height: int,
    out: np.ndarray,
    state: np.ndarray,
) -> tuple[int, int, int, int]:
    """jAER AEDAT 2.0 big-endian (int32 address, int32 timestamp) pairs.

    ``state``: [last raw timestamp (-1 = none), wrap offset]. ``width``/``height`` <= 0 mean unknown (no
    range check, no flip). Coordinates come out top-left: ``y = H-1-y_raw``, ``x = x_raw`` for both
    layouts (see ``recordings.formats.aedat2``).
    """
    cap = out.shape[0]
    n = 0
    while pos + 8 <= stop and n < cap:
        a = (
            (np.int64(buf[pos]) << 24)
            | (np.int64(buf[pos + 1]) << 16)
            | (np.int64(buf[pos + 2]) << 8)
            | np.int64(buf[pos + 3])
        )
        ts = (
            (np.int64(buf[pos + 4]) << 24)
            | (np.int64(buf[pos + 5]) << 16)
            | (np.int64(buf[pos + 6]) << 8)
            | np.int64(buf[pos + 7])
        )
        tt = unwrap32(ts, state)
        if layout == LAYOUT_DAVIS:
            if (a >> 31) & 1 or (a >> 10) & 1:
                pos += 8
                continue
            yr = (a >> 22) & 0x1FF
            xr = (a >> 12) & 0x3FF
            pol = (a >> 11) & 1
        else:
            if (a >> 15) & 1:
                pos += 8
                continue
            if a >> 16:
                return n, pos, ERR_BAD_ADDRESS, pos
            xr = (a >> 1) & 0x7F
            yr = (a >> 8) & 0x7F
            pol = 1 - (a & 1)
        if (width > 0 and xr >= width) or (height > 0 and yr >= height):
            return n, pos, ERR_BAD_ADDRESS, pos
        out[n]["t"] = tt
        out[n]["x"] = xr
        out[n]["y"] = height - 1 - yr if height > 0 else yr
        out[n]["p"] = pol
        n += 1
        pos += 8
    return n, pos, ERR_NONE, 0


@numba.njit(cache=True)
def aedat3_polarity_decode(buf: np.ndarray, pos: int, count: int, size: int, overflow: int, out: np.ndarray) -> int:
    """The ``count`` polarity events (``size`` bytes each) of one AEDAT 3.1 packet starting at ``pos``.

    Each event: little-endian uint32 data (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and
    int32 timestamp; t = overflow << 31 | timestamp. Invalid events (valid bit 0) are skipped.
    Returns the number of events written.
    """
    n = 0
    base = np.int64(overflow) << 31
    for k in range(count):
        q = pos + k * size
        d = np.int64(buf[q]) | (np.int64(buf[q + 1]) << 8) | (np.int64(buf[q + 2]) << 16) | (np.int64(buf[q + 3]) << 24)
        if d & 1 == 0:
            continue
        ts = (
            np.int64(buf[q + 4])
            | (np.int64(buf[q + 5]) << 8)
            | (np.int64(buf[q + 6]) << 16)
            | (np.int64(buf[q + 7] & 0x7F) << 24)
        )
        out[n]["t"] = base | ts
        out[n]["x"] = (d >> 17) & 0x7FFF
        out[n]["y"] = (d >> 2) & 0x7FFF
        out[n]["p"] = (d >> 1) & 1
        n += 1
    return n
