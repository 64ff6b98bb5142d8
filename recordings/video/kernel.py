"""The two hot loops of ``spikestream render``: events binned into frame counts, and counts painted into a
picture. Plain arrays and scalars in, nothing else (STYLE.md rule 1); ``recordings.video.frames`` checks
what goes in.

Frame ``k`` ends at ``end(k) = t0 + floor((k + 1) * step + 0.5)`` µs and shows the events with
``end(k) - window <= t < end(k)``: a window longer than the step leaves a trail over the following frames,
a shorter one a gap; ``window = 0`` means back to the previous frame's end (``end(-1) = t0``), so that
every event lands in exactly one frame. The step is a float (1/30 s is not a
whole number of µs; rounding it once would let a long video drift from the recording's clock), each end is
rounded to a whole µs, so which frame an event is in is decided by integers, never by float rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: The largest count a pixel keeps (``uint16`` saturates instead of wrapping).
COUNT_MAX = 65535


@njit(cache=True)
def frame_end(t0: int, step: float, k: int) -> int:
    """The end of frame ``k`` (exclusive), µs."""
    return t0 + int(np.floor((k + 1) * step + 0.5))


@njit(cache=True)
def bin_events(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    t0: int,
    step: float,
    window: int,
    f0: int,
    n_frames: int,
    counts: np.ndarray,
    events: np.ndarray,
) -> None:
    """Add each event to the frames ``f0 .. f0 + len(counts) - 1`` whose window holds it.

    ``counts`` is ``(F, H, W, 2)`` uint16 (channel 0 OFF, 1 ON), ``events`` ``(F,)`` int64 events per frame;
    frames at or past ``n_frames`` and events before ``t0`` or outside ``H x W`` are left out."""
    f_count = counts.shape[0]
    height = counts.shape[1]
    width = counts.shape[2]
    f_end = min(f0 + f_count, n_frames)
    for i in range(t.shape[0]):
        ti = t[i]
        if ti < t0:
            continue
        # a float guess, then the integer ends decide: the first frame ending after t, the last whose
        # window still starts at or before t
        k_lo = int(np.floor((ti - t0) / step))
        while k_lo > 0 and frame_end(t0, step, k_lo - 1) > ti:
            k_lo -= 1
        while frame_end(t0, step, k_lo) <= ti:
            k_lo += 1
        if window <= 0:
            k_hi = k_lo
        else:
            k_hi = max(int(np.floor((ti - t0 + window) / step)) - 1, k_lo - 1)
            while frame_end(t0, step, k_hi + 1) - window <= ti:
                k_hi += 1
            while k_hi >= k_lo and frame_end(t0, step, k_hi) - window > ti:
                k_hi -= 1
        k_lo = max(k_lo, f0)
        k_hi = min(k_hi, f_end - 1)
        xi = int(x[i])
        yi = int(y[i])
        if xi >= width or yi >= height:
            continue
        c = 1 if p[i] else 0
        for k in range(k_lo, k_hi + 1):
            j = k - f0
            if counts[j, yi, xi, c] < COUNT_MAX:
                counts[j, yi, xi, c] += 1
            events[j] += 1


@njit(cache=True)
def paint(counts: np.ndarray, scale: int, out: np.ndarray, oy: int, ox: int, on: np.ndarray, off: np.ndarray) -> None:
    """Paint one frame's ``(H, W, 2)`` counts into ``out[oy:, ox:]`` (BGR), each pixel a ``scale x scale``
    block: the ON colour where ON events are at least as many as OFF ones, the OFF colour where fewer; a
    pixel without events keeps what ``out`` holds (the background)."""
    height = counts.shape[0]
    width = counts.shape[1]
    for yi in range(height):
        for xi in range(width):
            n_off = counts[yi, xi, 0]
            n_on = counts[yi, xi, 1]
            if n_off == 0 and n_on == 0:
                continue
            colour = on if n_on >= n_off else off
            for dy in range(scale):
                row = oy + yi * scale + dy
                for dx in range(scale):
                    col = ox + xi * scale + dx
                    out[row, col, 0] = colour[0]
                    out[row, col, 1] = colour[1]
                    out[row, col, 2] = colour[2]
