"""Frames of a recording the slow, obvious way: for each frame, the events inside its window, counted per
pixel with ``np.add.at``. A different algorithm from ``recordings.video`` (which walks the events once,
a chunk of frames at a time), so that agreement proves something."""

from __future__ import annotations

import numpy as np


def reference_frames(
    events: np.ndarray, width: int, height: int, t0: int, step: float, window: int, n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, totals)``: ``(n_frames, H, W, 2)`` counts (channel 0 OFF, 1 ON) and events per frame.
    Frame ``k`` ends at ``t0 + floor((k + 1) * step + 0.5)`` µs (exclusive) and starts ``window`` µs before
    (``window = 0``: where frame ``k - 1`` ends; ``t0`` for frame 0)."""
    counts = np.zeros((n_frames, height, width, 2), dtype=np.int64)
    totals = np.zeros(n_frames, dtype=np.int64)
    t = events["t"]
    inside = (events["x"] < width) & (events["y"] < height)
    for k in range(n_frames):
        end = t0 + int(np.floor((k + 1) * step + 0.5))
        begin = end - window if window else t0 + int(np.floor(k * step + 0.5))
        sel = events[(t >= begin) & (t < end) & (t >= t0) & inside]
        np.add.at(counts[k], (sel["y"].astype(np.int64), sel["x"].astype(np.int64), sel["p"].astype(np.int64)), 1)
        totals[k] = sel.size
    return counts, totals


def reference_paint(
    counts: np.ndarray, scale: int, canvas: np.ndarray, oy: int, ox: int, on: np.ndarray, off: np.ndarray
) -> np.ndarray:
    """A copy of ``canvas`` with ``counts`` painted as ``recordings.video.kernel.paint`` paints them, by
    whole-array masks blown up with ``np.repeat``."""
    out = canvas.copy()
    n_off, n_on = counts[..., 0].astype(np.int64), counts[..., 1].astype(np.int64)
    colour = np.where((n_on >= n_off)[..., None], on, off).astype(np.uint8)
    lit = (n_on + n_off) > 0
    big_lit = np.repeat(np.repeat(lit, scale, axis=0), scale, axis=1)
    big_colour = np.repeat(np.repeat(colour, scale, axis=0), scale, axis=1)
    h, w = big_lit.shape
    region = out[oy : oy + h, ox : ox + w]
    region[big_lit] = big_colour[big_lit]
    return out
