"""Slow, obviously correct SDNN waves: plain Python loops over nested lists, straight from the contract in
``nodes/sdnn/kernel.py``. Where the kernel accumulates potentials input by input, step by step, the
reference recomputes every potential from scratch at every step (the sum over the inputs spiked so far)."""

from __future__ import annotations


def dog_reference(frame, kern):
    h, w, k = len(frame), len(frame[0]), len(kern)
    half = k // 2
    on = [[0.0] * w for _ in range(h)]
    off = [[0.0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            r = 0.0
            for dy in range(k):
                for dx in range(k):
                    yy, xx = y + dy - half, x + dx - half
                    if 0 <= yy < h and 0 <= xx < w:
                        r += kern[dy][dx] * frame[yy][xx]
            on[y][x] = max(r, 0.0)
            off[y][x] = max(-r, 0.0)
    return [on, off]


def latency_reference(values, threshold, n_steps):
    """``values`` a flat list; the steps, flat."""
    spiking = [(-v, i) for i, v in enumerate(values) if v > threshold]
    spiking.sort()
    out = [n_steps] * len(values)
    for rank, (_, i) in enumerate(spiking):
        out[i] = rank * n_steps // len(spiking)
    return out


def conv_wave_reference(times, w, threshold, n_steps):
    """``times[c][y][x]``, ``w[m][c][dy][dx]``; returns (out_t, at_spike, final) as nested lists [m][y][x]."""
    n_maps, n_ch, k = len(w), len(w[0]), len(w[0][0])
    h, wd = len(times[0]), len(times[0][0])
    oh, ow = h - k + 1, wd - k + 1

    def potential(m, oy, ox, t):
        return sum(
            w[m][c][dy][dx]
            for c in range(n_ch)
            for dy in range(k)
            for dx in range(k)
            if times[c][oy + dy][ox + dx] <= t
        )

    out_t = [[[n_steps] * ow for _ in range(oh)] for _ in range(n_maps)]
    at_spike = [[[0.0] * ow for _ in range(oh)] for _ in range(n_maps)]
    for oy in range(oh):
        for ox in range(ow):
            for t in range(n_steps):
                pots = [potential(m, oy, ox, t) for m in range(n_maps)]
                over = [(-pots[m], m) for m in range(n_maps) if pots[m] >= threshold]
                if over:
                    _, m = min(over)
                    out_t[m][oy][ox] = t
                    at_spike[m][oy][ox] = pots[m]
                    break  # the position is decided: one winner map per position
    final = [[[potential(m, oy, ox, n_steps - 1) for ox in range(ow)] for oy in range(oh)] for m in range(n_maps)]
    return out_t, at_spike, final


def pool_reference(times, size, stride):
    h, w = len(times[0]), len(times[0][0])
    return [
        [
            [
                min(plane[oy * stride + dy][ox * stride + dx] for dy in range(size) for dx in range(size))
                for ox in range((w - size) // stride + 1)
            ]
            for oy in range((h - size) // stride + 1)
        ]
        for plane in times
    ]


def winners_reference(out_t, at_spike, k, radius, n_steps):
    """The learning winners [(m, y, x)], in the order chosen."""
    candidates = [
        (out_t[m][y][x], -at_spike[m][y][x], m, y, x)
        for m in range(len(out_t))
        for y in range(len(out_t[0]))
        for x in range(len(out_t[0][0]))
        if out_t[m][y][x] < n_steps
    ]
    candidates.sort(key=lambda c: (c[0], c[1], (c[2], c[3], c[4])))
    chosen, maps, blocked = [], set(), []
    for _, _, m, y, x in candidates:
        if len(chosen) == k:
            break
        if m in maps or any(abs(y - by) <= radius and abs(x - bx) <= radius for by, bx in blocked):
            continue
        chosen.append((m, y, x))
        maps.add(m)
        blocked.append((y, x))
    return chosen


def stdp_reference(w, in_t, out_t, winners, a_plus, a_minus):
    """New weights (nested lists), each winner's kernel updated by ``a · w · (1 − w)``."""
    new = [[[row[:] for row in ch] for ch in wm] for wm in w]
    for m, y, x in winners:
        post = out_t[m][y][x]
        for c in range(len(w[0])):
            for dy in range(len(w[0][0])):
                for dx in range(len(w[0][0][0])):
                    v = new[m][c][dy][dx]
                    a = a_plus if in_t[c][y + dy][x + dx] <= post else a_minus
                    new[m][c][dy][dx] = v + a * v * (1.0 - v)
    return new
