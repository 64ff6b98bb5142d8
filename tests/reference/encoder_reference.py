"""Slow, obviously correct versions of the encoder kernels: plain Python loops, one pixel or one event
at a time, straight from the rules written in ``nodes/encoder/kernels/``."""

from __future__ import annotations

import math

import numpy as np

NO_EVENT = None


def delta_reference(frames, times, on_th, off_th, refractory_us, eps):
    """Events ``(t, x, y, p)`` (list, in output order) of delta-encoding ``frames`` taken at ``times``."""
    h, w = frames[0].shape

    def log_of(v):
        return math.log(float(v) + eps)

    prev = [[log_of(frames[0][y][x]) for x in range(w)] for y in range(h)]
    ref = [row[:] for row in prev]
    last = [[None] * w for _ in range(h)]
    out = []
    for k in range(1, len(frames)):
        t0, t1 = int(times[k - 1]), int(times[k])
        frame_events = []
        for y in range(h):
            for x in range(w):
                l0, l1 = prev[y][x], log_of(frames[k][y][x])
                crossings = []
                if l1 - ref[y][x] >= on_th:
                    while l1 - ref[y][x] >= on_th:
                        ref[y][x] += on_th
                        crossings.append((ref[y][x], 1))
                else:
                    while ref[y][x] - l1 >= off_th:
                        ref[y][x] -= off_th
                        crossings.append((ref[y][x], 0))
                for level, p in crossings:
                    frac = 1.0 if l1 == l0 else (level - l0) / (l1 - l0)
                    t = min(max(t0 + math.ceil(frac * (t1 - t0)), t0 + 1), t1)
                    if refractory_us and last[y][x] is not None and t - last[y][x] < refractory_us:
                        continue
                    last[y][x] = t
                    frame_events.append((t, x, y, p))
                prev[y][x] = l1
        frame_events.sort(key=lambda e: e[0])  # stable: ties stay in pixel order
        out.extend(frame_events)
    return out


def transform_reference(events, *, in_w, in_h, crop, out_w, out_h, channels, merge, ba_us, refr_us):
    """Kept events ``(t, x, y, c)`` and removal counts of ``EventTransform``, one event at a time."""
    x0, y0, cw, ch = crop if crop is not None else (0, 0, in_w, in_h)
    ba_last: dict[tuple[int, int], int] = {}
    refr_last: dict[tuple[int, int, int], int] = {}
    counts = {"in": 0, "cropped": 0, "polarity": 0, "background_activity": 0, "refractory": 0, "out": 0}
    out = []
    for t, x, y, p in events:
        t, x, y, p = int(t), int(x), int(y), int(p)
        counts["in"] += 1
        cx, cy = x - x0, y - y0
        if not (0 <= cx < cw and 0 <= cy < ch):
            counts["cropped"] += 1
            continue
        if ba_us > 0:
            ok = any(
                (cx + dx, cy + dy) in ba_last and t - ba_last[(cx + dx, cy + dy)] <= ba_us
                for dx in (-1, 0, 1)
                for dy in (-1, 0, 1)
                if (dx, dy) != (0, 0)
            )
            ba_last[(cx, cy)] = t
            if not ok:
                counts["background_activity"] += 1
                continue
        if channels == 2:
            c = p
        elif merge or p == 1:
            c = 0
        else:
            counts["polarity"] += 1
            continue
        ox, oy = cx * out_w // cw, cy * out_h // ch
        if refr_us > 0:
            key = (c, oy, ox)
            if key in refr_last and t - refr_last[key] < refr_us:
                counts["refractory"] += 1
                continue
            refr_last[key] = t
        out.append((t, ox, oy, c))
        counts["out"] += 1
    return out, counts


def as_tuples(events: np.ndarray):
    """``EVENT_DTYPE`` records as a list of ``(t, x, y, p)`` ints."""
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]
