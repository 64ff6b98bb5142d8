"""Numba kernel of the event transform (``nodes.encoder.events`` owns the state and validates): crop,
background-activity filter, downsampling, channels and refractory filter, one event at a time."""

from __future__ import annotations

import numpy as np
from numba import njit

# Indices of the EventTransform counters array.
C_IN = 0  # events seen
C_CROPPED = 1  # dropped: outside the crop window
C_POLARITY = 2  # dropped: polarity not mapped to a channel (channels=1, ON only)
C_BA = 3  # dropped: background-activity filter
C_REFRACTORY = 4  # dropped: refractory filter
C_OUT = 5  # events emitted
N_COUNTERS = 6

#: For the type checker only: the crop window, the output size, the channels and the filters' windows.
Geometry = tuple[int, int, int, int, int, int, int, bool, int, int]


@njit(cache=True)
def transform_events(
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    geometry: Geometry,
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> int:
    """Crop → background-activity filter (crop geometry) → downsample → channel → refractory filter
    (per output pixel and channel), one event at a time, in order. ``events`` = ``(t, x, y, p)``;
    ``geometry`` = ``(x0, y0, crop_w, crop_h, out_w, out_h, channels, merge_polarities, ba_window_us,
    refractory_us)``; ``state`` = ``(ba_last, refr_last, counters)``, updated in place. Writes the kept
    events to ``out`` = ``(t, x, y, c)``, rows ``[:n]``, and returns ``n``.

    ``ba_last`` (``(crop_h, crop_w)``) holds the time of the last event at each cropped pixel (every
    event that reaches the filter updates it, kept or not); an event is kept when one of its 8
    neighbours has ``t - last <= ba_window_us``. ``refr_last`` (``(channels, out_h, out_w)``) holds the
    time of the last *emitted* event; an event with ``t - last < refractory_us`` is dropped.
    A window of 0 disables that filter. ``counters`` is indexed by the ``C_*`` constants.
    """
    t, x, y, p = events
    x0, y0, crop_w, crop_h, out_w, out_h, channels, merge_polarities, ba_window_us, refractory_us = geometry
    ba_last, refr_last, counters = state
    out_t, out_x, out_y, out_c = out
    n = 0
    for k in range(t.shape[0]):
        counters[C_IN] += 1
        cx = np.int64(x[k]) - x0
        cy = np.int64(y[k]) - y0
        if cx < 0 or cy < 0 or cx >= crop_w or cy >= crop_h:
            counters[C_CROPPED] += 1
            continue
        tk = t[k]
        if ba_window_us > 0:
            support = False
            for dy in range(-1, 2):
                ny = cy + dy
                if ny < 0 or ny >= crop_h:
                    continue
                for dx in range(-1, 2):
                    nx = cx + dx
                    if (dx == 0 and dy == 0) or nx < 0 or nx >= crop_w:
                        continue
                    if tk - ba_last[ny, nx] <= ba_window_us:
                        support = True
            ba_last[cy, cx] = tk
            if not support:
                counters[C_BA] += 1
                continue
        if channels == 2:
            c = int(p[k])
        elif merge_polarities:
            c = 0
        else:
            if p[k] == 0:
                counters[C_POLARITY] += 1
                continue
            c = 0
        ox = cx * out_w // crop_w
        oy = cy * out_h // crop_h
        if refractory_us > 0:
            if tk - refr_last[c, oy, ox] < refractory_us:
                counters[C_REFRACTORY] += 1
                continue
            refr_last[c, oy, ox] = tk
        out_t[n] = tk
        out_x[n] = ox
        out_y[n] = oy
        out_c[n] = c
        n += 1
    counters[C_OUT] += n
    return n
