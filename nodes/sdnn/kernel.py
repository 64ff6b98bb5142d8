"""Numba kernels of the SDNN wave (Kheradpisheh et al. 2018): plain arrays in, plain arrays out.

A wave is one image. Time is a step index ``0 .. n_steps - 1``; a first-spike-time array holds, per neuron,
the step of its one spike or ``n_steps`` for "never". The contract that kernels and their references in
``tests/reference/sdnn_reference.py`` both meet:

* ``dog_filter``: "same"-size correlation of a frame with a DoG kernel (zero padding); channel 0 is the ON
  response ``max(r, 0)``, channel 1 the OFF response ``max(-r, 0)``.
* ``intensity_to_latency``: values above ``threshold`` spike, the strongest first: the ``m`` spiking values,
  ranked by decreasing value (ties: flat index order), fill ``n_steps`` steps in equal shares,
  ``step = rank * n_steps // m``.
* ``conv_wave``: integrate-and-fire neurons with no leak; a neuron's potential at step ``t`` is the sum of
  the weights of its inputs that spiked at steps ``<= t`` ("valid" correlation, weights ``[M, C, k, k]``).
  At each step every neuron that has not fired, is not inhibited and has ``V >= threshold`` is a candidate;
  per position the candidate with the highest ``V`` (ties: lowest map) fires, and every other map at that
  position is inhibited for the rest of the wave (first-spike winner-take-all: one winner map per
  position). Also returned: each fired neuron's potential at its spike, and every neuron's final potential.
* ``pool_wave``: a pooled neuron spikes at the earliest spike of its window.
* ``select_winners``: up to ``k`` learning winners: repeatedly the fired neuron with the earliest spike,
  then the highest potential at its spike, then the lowest flat index, among the maps not chosen yet and
  the positions not inhibited; each winner inhibits learning in every map within ``radius`` (Chebyshev).
* ``stdp_update``: for each winner, every weight of its map's kernel changes by ``a · w · (1 − w)`` with
  ``a = a_plus`` if its input spiked no later than the winner, ``a_minus`` otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def dog_filter(frame: np.ndarray, kern: np.ndarray) -> np.ndarray:
    """ON/OFF responses ``[2, H, W]`` of ``frame`` ``[H, W]`` to the odd-sized kernel ``kern`` ``[k, k]``."""
    h, w = frame.shape
    k = kern.shape[0]
    half = k // 2
    out = np.zeros((2, h, w))
    for y in range(h):
        for x in range(w):
            r = 0.0
            for dy in range(k):
                yy = y + dy - half
                if yy < 0 or yy >= h:
                    continue
                for dx in range(k):
                    xx = x + dx - half
                    if 0 <= xx < w:
                        r += kern[dy, dx] * frame[yy, xx]
            if r > 0.0:
                out[0, y, x] = r
            elif r < 0.0:
                out[1, y, x] = -r
    return out


@njit(cache=True)
def intensity_to_latency(values: np.ndarray, threshold: float, n_steps: int) -> np.ndarray:
    """First-spike steps (same shape as ``values``, int32) of the values above ``threshold``."""
    flat = values.ravel()
    times = np.full(flat.size, n_steps, np.int32)
    idx = np.nonzero(flat > threshold)[0]
    m = idx.size
    if m:
        order = np.argsort(-flat[idx], kind="mergesort")
        for r in range(m):
            times[idx[order[r]]] = r * n_steps // m
    return times.reshape(values.shape)


@njit(cache=True)
def conv_wave(
    times: np.ndarray, w: np.ndarray, threshold: float, n_steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first-spike steps [M, H', W'] int32, potential at the spike, final potential)`` of a conv layer
    of IF neurons with weights ``w`` ``[M, C, k, k]`` driven by input first-spike steps ``[C, H, W]``."""
    n_maps, n_ch, k, _ = w.shape
    _, h, wd = times.shape
    oh, ow = h - k + 1, wd - k + 1
    wt = np.empty((n_ch, k, k, n_maps))  # map innermost: the scatter below runs along it
    for m in range(n_maps):
        for c in range(n_ch):
            for dy in range(k):
                for dx in range(k):
                    wt[c, dy, dx, m] = w[m, c, dy, dx]
    pot = np.zeros((oh, ow, n_maps))
    # inputs bucketed by step (a counting sort; within a step, flat index order)
    counts = np.zeros(n_steps + 1, np.int64)
    for c in range(n_ch):
        for y in range(h):
            for x in range(wd):
                t = times[c, y, x]
                if t < n_steps:
                    counts[t + 1] += 1
    for t in range(n_steps):
        counts[t + 1] += counts[t]
    fill = counts[:-1].copy()
    order = np.empty(counts[n_steps], np.int64)
    for c in range(n_ch):
        for y in range(h):
            for x in range(wd):
                t = times[c, y, x]
                if t < n_steps:
                    order[fill[t]] = (c * h + y) * wd + x
                    fill[t] += 1
    out_t = np.full((n_maps, oh, ow), n_steps, np.int32)
    at_spike = np.zeros((n_maps, oh, ow))
    done = np.zeros((oh, ow), np.bool_)  # a map has fired here: the position is decided
    for t in range(n_steps):
        for j in range(counts[t], counts[t + 1]):
            f = order[j]
            c = f // (h * wd)
            y = (f // wd) % h
            x = f % wd
            for dy in range(k):
                oy = y - dy
                if oy < 0 or oy >= oh:
                    continue
                for dx in range(k):
                    ox = x - dx
                    if ox < 0 or ox >= ow:
                        continue
                    for m in range(n_maps):
                        pot[oy, ox, m] += wt[c, dy, dx, m]
        for oy in range(oh):
            for ox in range(ow):
                if done[oy, ox]:
                    continue
                best = -1
                for m in range(n_maps):
                    v = pot[oy, ox, m]
                    if v >= threshold and (best < 0 or v > pot[oy, ox, best]):
                        best = m
                if best >= 0:
                    done[oy, ox] = True
                    out_t[best, oy, ox] = t
                    at_spike[best, oy, ox] = pot[oy, ox, best]
    final = np.empty((n_maps, oh, ow))
    for m in range(n_maps):
        for oy in range(oh):
            for ox in range(ow):
                final[m, oy, ox] = pot[oy, ox, m]
    return out_t, at_spike, final


@njit(cache=True)
def pool_wave(times: np.ndarray, size: int, stride: int) -> np.ndarray:
    """First-spike steps of max (first-spike) pooling over ``size`` x ``size`` windows every ``stride``."""
    n_ch, h, w = times.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.empty((n_ch, oh, ow), np.int32)
    for c in range(n_ch):
        for oy in range(oh):
            for ox in range(ow):
                best = times[c, oy * stride, ox * stride]
                for dy in range(size):
                    for dx in range(size):
                        best = min(best, times[c, oy * stride + dy, ox * stride + dx])
                out[c, oy, ox] = best
    return out


@njit(cache=True)
def select_winners(out_t: np.ndarray, at_spike: np.ndarray, k: int, radius: int, n_steps: int) -> np.ndarray:
    """Up to ``k`` learning winners ``[n, 3]`` (map, y, x), in the order chosen."""
    n_maps, h, w = out_t.shape
    map_taken = np.zeros(n_maps, np.bool_)
    blocked = np.zeros((h, w), np.bool_)
    winners = np.empty((k, 3), np.int64)
    n = 0
    for _ in range(k):
        bm, by, bx = -1, -1, -1
        bt, bv = n_steps, 0.0
        for m in range(n_maps):
            if map_taken[m]:
                continue
            for y in range(h):
                for x in range(w):
                    t = out_t[m, y, x]
                    if t >= n_steps or blocked[y, x]:
                        continue
                    v = at_spike[m, y, x]
                    if t < bt or (t == bt and v > bv):
                        bm, by, bx, bt, bv = m, y, x, t, v
        if bm < 0:
            break
        winners[n, 0], winners[n, 1], winners[n, 2] = bm, by, bx
        n += 1
        map_taken[bm] = True
        for y in range(max(0, by - radius), min(h, by + radius + 1)):
            for x in range(max(0, bx - radius), min(w, bx + radius + 1)):
                blocked[y, x] = True
    return winners[:n]


@njit(cache=True)
def stdp_update(
    w: np.ndarray, in_t: np.ndarray, out_t: np.ndarray, winners: np.ndarray, a_plus: float, a_minus: float
) -> None:
    """Apply the simplified STDP of each winner to its map's kernel in ``w`` ``[M, C, k, k]`` (in place)."""
    _, n_ch, k, _ = w.shape
    for i in range(winners.shape[0]):
        m, y, x = winners[i, 0], winners[i, 1], winners[i, 2]
        post = out_t[m, y, x]
        for c in range(n_ch):
            for dy in range(k):
                for dx in range(k):
                    v = w[m, c, dy, dx]
                    a = a_plus if in_t[c, y + dy, x + dx] <= post else a_minus
                    w[m, c, dy, dx] = v + a * v * (1.0 - v)


@njit(cache=True)
def global_max(final: np.ndarray) -> np.ndarray:
    """Per map, the largest final potential over all positions (global max pooling)."""
    n_maps = final.shape[0]
    out = np.empty(n_maps)
    for m in range(n_maps):
        out[m] = final[m].max()
    return out
