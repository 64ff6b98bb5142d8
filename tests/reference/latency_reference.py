"""Slow, obviously correct latency coding: one pixel at a time, the snnTorch formulas written out, then a
sort of ``(time, pixel)`` pairs (the kernel instead scans once and sorts each image stably)."""

from __future__ import annotations

import math


def latency_reference(images, t0, duration_us, kind, tau, threshold):
    """Events ``(t, x, y)`` of latency-coding ``images`` (a list of 2-D lists of values in [0, 1])."""
    out = []
    for k, image in enumerate(images):
        start = t0 + k * duration_us
        spikes = []
        for y, row in enumerate(image):
            for x, v in enumerate(row):
                v = float(v)
                if v <= threshold:
                    continue  # never spikes
                offset = tau * (1.0 - v) if kind == "linear" else tau * math.log(v / (v - threshold))
                if offset >= duration_us:
                    continue  # after the presentation's end
                spikes.append((math.floor(offset), y * len(row) + x, x, y))
        for offset, _, x, y in sorted(spikes):
            out.append((start + offset, x, y))
    return out
