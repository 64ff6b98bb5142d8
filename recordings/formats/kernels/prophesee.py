"""Numba kernels of the Prophesee formats: EVT 2.0 and EVT 3.0 RAW words, DAT CD records."""

from __future__ import annotations

import numba
import numpy as np

from recordings.formats.kernels import ERR_BAD_ADDRESS, ERR_BAD_TYPE, ERR_NONE
from recordings.formats.kernels.unwrap import unwrap32


@numba.njit(cache=True)
def evt2_decode(
    buf: np.ndarray, pos: int, stop: int, width: int, height: int, out: np.ndarray, state: np.ndarray
) -> tuple[int, int, int, int]:
    """Prophesee EVT 2.0: little-endian 32-bit words, type in bits 31-28.

    CD_OFF (0x0) / CD_ON (0x1): bits 27-22 timestamp LSBs, 21-11 x, 10-0 y. EV_TIME_HIGH (0x8): bits 27-0
    are timestamp bits 33-6. EXT_TRIGGER (0xA), OTHERS (0xE) and CONTINUED (0xF) carry no CD event.
    ``state``: [time high (-1 before the first EV_TIME_HIGH), wrap offset in time-high units].
    CD events before the first EV_TIME_HIGH have no time base and are dropped.
    """
    cap = out.shape[0]
    n = 0
    th = state[0]
    wrap = state[1]
    while pos + 4 <= stop and n < cap:
        w = (
            np.int64(buf[pos])
            | (np.int64(buf[pos + 1]) << 8)
            | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 24)
        )
        typ = w >> 28
        if typ <= 1:
            xx = (w >> 11) & 0x7FF
            yy = w & 0x7FF
            if (width > 0 and xx >= width) or (height > 0 and yy >= height):
                state[0] = th
                state[1] = wrap
                return n, pos, ERR_BAD_ADDRESS, pos
            if th >= 0:
                out[n]["t"] = ((wrap + th) << 6) | ((w >> 22) & 0x3F)
                out[n]["x"] = xx
                out[n]["y"] = yy
                out[n]["p"] = typ
                n += 1
        elif typ == 0x8:
            new = w & 0xFFFFFFF
            if th >= 0 and new < th:
                wrap += np.int64(1) << 28
            th = new
        elif typ != 0xA and typ != 0xE and typ != 0xF:
            state[0] = th
            state[1] = wrap
            return n, pos, ERR_BAD_TYPE, pos
        pos += 4
    state[0] = th
    state[1] = wrap
    return n, pos, ERR_NONE, 0


# Indices into the EVT 3.0 state array.
EVT3_TIME_HIGH = 0  # last TIME_HIGH value, -1 before the first
EVT3_WRAP = 1  # TIME_HIGH wrap-arounds, in TIME_HIGH units (4096 per wrap)
EVT3_TIME_LOW = 2
EVT3_Y = 3
EVT3_X_BASE = 4
EVT3_POL = 5
EVT3_LAST_T = 6  # last emitted timestamp, -1 = none
EVT3_CLAMPED = 7  # events whose timestamp was raised to the last emitted one
EVT3_TIME_LOW_BACK = 8  # TIME_LOW words smaller than the previous TIME_LOW under the same TIME_HIGH
EVT3_STATE_SIZE = 9


@numba.njit(cache=True)
def evt3_decode(
    buf: np.ndarray, pos: int, stop: int, width: int, height: int, out: np.ndarray, state: np.ndarray
) -> tuple[int, int, int, int]:
    """Prophesee EVT 3.0: little-endian 16-bit words, type in bits 15-12.

    ADDR_Y 0x0 (y = bits 10-0), ADDR_X 0x2 (one event: polarity bit 11, x = bits 10-0), VECT_BASE_X 0x3
    (polarity bit 11, base x bits 10-0), VECT_12 0x4 / VECT_8 0x5 (one event per set bit at base x + bit,
    then base x += 12 / 8), TIME_LOW 0x6 (bits 11-0), TIME_HIGH 0x8 (bits 23-12 of the 24-bit time),
    CONTINUED_4 0x7, EXT_TRIGGER 0xA, OTHERS 0xE, CONTINUED_12 0xF (no CD events). Other types are corrupt.
    A TIME_HIGH smaller than the previous one is a wrap-around of the 24-bit time (+2**24 µs); a new
    TIME_HIGH value resets TIME_LOW to 0 until the next TIME_LOW word.
    Timestamps that would go backwards (a TIME_LOW smaller than the previous TIME_LOW under the same
    TIME_HIGH) are clamped to the last emitted timestamp and counted; see ``recordings.formats.evt``.
    CD events before the first TIME_HIGH are dropped (no time base).
    """
    cap = out.shape[0]
    n = 0
    th = state[EVT3_TIME_HIGH]
    wrap = state[EVT3_WRAP]
    tl = state[EVT3_TIME_LOW]
    yy = state[EVT3_Y]
    base = state[EVT3_X_BASE]
    pol = state[EVT3_POL]
    last = state[EVT3_LAST_T]
    clamped = state[EVT3_CLAMPED]
    back = state[EVT3_TIME_LOW_BACK]
    err = ERR_NONE
    now = ((wrap + th) << 12) | tl
    while pos + 2 <= stop and n + 12 <= cap:
        w = np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8)
        typ = w >> 12
        v = w & 0xFFF
        if typ == 0x2:
            xx = v & 0x7FF
            if width > 0 and xx >= width:
                err = ERR_BAD_ADDRESS
                break
            if th >= 0:
                if now < last:
                    clamped += 1
                else:
                    last = now
                r = out[n]
                r["t"] = last
                r["x"] = xx
                r["y"] = yy
                r["p"] = v >> 11
                n += 1
        elif typ == 0x0:
            yy = v & 0x7FF
            if height > 0 and yy >= height:
                err = ERR_BAD_ADDRESS
                break
        elif typ == 0x6:
            if v < tl and th >= 0:
                back += 1
            tl = v
            now = ((wrap + th) << 12) | tl
        elif typ == 0x4 or typ == 0x5:
            bits = 12 if typ == 0x4 else 8
            mask = v & ((1 << bits) - 1)
            if width > 0 and mask != 0:
                # The highest set bit must land inside the sensor.
                top = bits - 1
                while (mask >> top) & 1 == 0:
                    top -= 1
                if base + top >= width:
                    err = ERR_BAD_ADDRESS
                    break
            if th >= 0 and mask != 0:
                if now >= last:
                    last = now
                tt = last  # clamped events are counted one by one below
                for b in range(bits):
                    if (mask >> b) & 1:
                        if now < tt:
                            clamped += 1
                        r = out[n]
                        r["t"] = tt
                        r["x"] = base + b
                        r["y"] = yy
                        r["p"] = pol
                        n += 1
            base += bits
        elif typ == 0x3:
            base = v & 0x7FF
            pol = v >> 11
        elif typ == 0x8:
            if th >= 0 and v < th:
                wrap += 4096
            if v != th:
                tl = 0
            th = v
            now = ((wrap + th) << 12) | tl
        elif typ != 0x7 and typ != 0xA and typ != 0xE and typ != 0xF:
            err = ERR_BAD_TYPE
            break
        pos += 2
    state[EVT3_TIME_HIGH] = th
    state[EVT3_WRAP] = wrap
    state[EVT3_TIME_LOW] = tl
    state[EVT3_Y] = yy
    state[EVT3_X_BASE] = base
    state[EVT3_POL] = pol
    state[EVT3_LAST_T] = last
    state[EVT3_CLAMPED] = clamped
    state[EVT3_TIME_LOW_BACK] = back
    if err != ERR_NONE:
        return n, pos, err, pos
    return n, pos, ERR_NONE, 0


@numba.njit(cache=True)
def dat_decode(
    buf: np.ndarray, pos: int, stop: int, width: int, height: int, out: np.ndarray, state: np.ndarray
) -> tuple[int, int, int, int]:
    """Prophesee DAT CD events: little-endian uint32 t, uint32 w; x = w & 0x3FFF, y = (w >> 14) & 0x3FFF,
    p = (w >> 28) & 0xF (must be 0 or 1). ``state`` as for ``unwrap32`` (32-bit timestamps unwrapped)."""
    cap = out.shape[0]
    n = 0
    while pos + 8 <= stop and n < cap:
        ts = (
            np.int64(buf[pos])
            | (np.int64(buf[pos + 1]) << 8)
            | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 24)
        )
        w = (
            np.int64(buf[pos + 4])
            | (np.int64(buf[pos + 5]) << 8)
            | (np.int64(buf[pos + 6]) << 16)
            | (np.int64(buf[pos + 7]) << 24)
        )
        xx = w & 0x3FFF
        yy = (w >> 14) & 0x3FFF
        pol = (w >> 28) & 0xF
        if pol > 1:
            return n, pos, ERR_BAD_TYPE, pos
        if (width > 0 and xx >= width) or (height > 0 and yy >= height):
            return n, pos, ERR_BAD_ADDRESS, pos
        out[n]["t"] = unwrap32(ts, state)
        out[n]["x"] = xx
        out[n]["y"] = yy
        out[n]["p"] = pol
        n += 1
        pos += 8
    return n, pos, ERR_NONE, 0
