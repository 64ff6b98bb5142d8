"""Numba kernels of the saccade digits (``nodes.sources.synthesis.saccade`` validates and owns the state).

A digit image (values in [0, 1]) is drawn shifted right by ox and down by oy pixels. With
k = floor(ox), a = ox - k, pixel column x blends image columns x - k (weight 1 - a) and x - k - 1
(weight a); rows likewise. The image is zero-padded by ``pad = field + 1`` on every side so no
bounds checks are needed. The monitor's intensity is quantised to uint8:
q = floor(background + contrast * v + 0.5), and its log comes from ``log_lut``: exactly what
DeltaEncoder computes for a uint8 frame. The per-pixel rule is the delta kernels' (``count_crossings``,
``crossing_time``).

``saccade_sample`` takes the stream's scalar constants as one record ``consts``: a NamedTuple
(``nodes.sources.synthesis.saccade.SaccadeConstants``) with ``field``, ``frame_us``,
``on_threshold``, ``off_threshold``, ``refractory_us``, ``background``, ``contrast`` and
``l_background`` (the log intensity of a blank pixel, ``lut[floor(background + 0.5)]``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from nodes.encoder.kernels.delta import count_crossings, crossing_time
from nodes.encoder.kernels.time_sort import sort_by_time_radix

if TYPE_CHECKING:  # the record's module imports this one
    from nodes.sources.synthesis.saccade import SaccadeConstants


@njit(cache=True)
def pad_image(img: np.ndarray, pad: int) -> np.ndarray:
    """``img`` with ``pad`` zero rows/columns on every side."""
    h, w = img.shape
    out = np.zeros((h + 2 * pad, w + 2 * pad), dtype=np.float64)
    out[pad : pad + h, pad : pad + w] = img
    return out


@njit(cache=True)
def _shifted_q(
    padded: np.ndarray,
    pad: int,
    x: int,
    y: int,
    kx: int,
    ky: int,
    ax: float,
    ay: float,
    bg: float,
    contrast: float,
) -> int:
    c = x - kx + pad
    r = y - ky + pad
    top = padded[r, c] * (1.0 - ax) + padded[r, c - 1] * ax
    bot = padded[r - 1, c] * (1.0 - ax) + padded[r - 1, c - 1] * ax
    v: float = top * (1.0 - ay) + bot * ay
    return math.floor(bg + contrast * v + 0.5)


@njit(cache=True)
def render_frames(
    img: np.ndarray, field: int, ox: np.ndarray, oy: np.ndarray, background: float, contrast: float
) -> np.ndarray:
    """uint8 frames ``(len(ox), field, field)`` of ``img`` shifted by ``(ox[f], oy[f])``."""
    nf = ox.shape[0]
    padded = pad_image(img, field + 1)
    out = np.empty((nf, field, field), dtype=np.uint8)
    for f in range(nf):
        kx = math.floor(ox[f])
        ky = math.floor(oy[f])
        ax = ox[f] - kx
        ay = oy[f] - ky
        for y in range(field):
            for x in range(field):
                out[f, y, x] = _shifted_q(padded, field + 1, x, y, kx, ky, ax, ay, background, contrast)
    return out


@njit(cache=True)
def _grow(
    out_t: np.ndarray, out_i: np.ndarray, out_p: np.ndarray, need: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cap = max(2 * out_t.shape[0], need)
    t2 = np.empty(cap, dtype=np.int64)
    i2 = np.empty(cap, dtype=np.int64)
    p2 = np.empty(cap, dtype=np.uint8)
    m = out_t.shape[0]
    t2[:m] = out_t
    i2[:m] = out_i
    p2[:m] = out_p
    return t2, i2, p2


# Inlined into saccade_sample: called once per pixel, a separate function pays the tuples' reference
# counts (about 5 % of the sample time, measured); inlined, it runs as fast as with separate arguments.
@njit(cache=True, inline="always")
def _saccade_pixel(
    consts: SaccadeConstants,
    t_start: int,
    tables: tuple[np.ndarray, ...],
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
    n: int,
    x: int,
    y: int,
    n_frames: int,
) -> int:
    """One pixel of ``saccade_sample`` over frames ``1 .. n_frames - 1``. Returns the new ``n``, or -1
    (state left untouched) when the output arrays are too small.

    ``consts`` holds the stream's constants, ``tables`` the sample's arrays ``(padded, ink, kx, ky, ax, ay,
    runs, lut)``, ``state`` the per-pixel ``(l_prev, l_ref, last_t)`` and ``out`` the ``(t, pixel, p)``
    output arrays, filled up to ``n``.

    ``runs[r]:runs[r + 1]`` are the frames of the r-th run of equal integer shift. Where the pixel's
    taps hold no ink during a run, it sees exactly the background level in each of its frames; only
    the first of them can fire (after it, the reference is within a threshold of that same level), so
    the others are skipped -- the result is the same as stepping through them."""
    padded, ink, kx, ky, ax, ay, runs, lut = tables
    l_prev, l_ref, last_t = state
    out_t, out_i, out_p = out
    on_th = consts.on_threshold
    off_th = consts.off_threshold
    frame_us = consts.frame_us
    refractory_us = consts.refractory_us
    pad = consts.field + 1
    pix = y * consts.field + x
    l0 = l_prev[y, x]
    ref = l_ref[y, x]
    last = last_t[y, x]
    cap = out_t.shape[0]
    for r in range(runs.shape[0] - 1):
        f_lo = runs[r]
        if f_lo >= n_frames:
            break
        inked = ink[y - ky[f_lo] + pad, x - kx[f_lo] + pad]
        f_hi = min(runs[r + 1], n_frames) if inked else f_lo + 1
        for f in range(f_lo, f_hi):
            if inked:
                l1 = lut[_shifted_q(padded, pad, x, y, kx[f], ky[f], ax[f], ay[f], consts.background, consts.contrast)]
            else:  # all four taps are 0: exactly the background level, no interpolation needed
                l1 = consts.l_background
            if l1 - ref >= on_th or ref - l1 >= off_th:
                if n + count_crossings(l1, ref, on_th, off_th) > cap:
                    return -1
                t0 = t_start + (f - 1) * frame_us
                # emit_pixel, written out here: calling it per crossing step costs ~4x (array passing)
                up = l1 - ref >= on_th
                step = on_th if up else -off_th
                pol = 1 if up else 0
                while (l1 - ref >= on_th) if up else (ref - l1 >= off_th):
                    ref += step
                    t = crossing_time(t0, t0 + frame_us, l0, l1, ref)
                    if refractory_us == 0 or t - last >= refractory_us:
                        out_t[n] = t
                        out_i[n] = pix
                        out_p[n] = pol
                        n += 1
                        last = t
            l0 = l1
    l_prev[y, x] = l0
    l_ref[y, x] = ref
    last_t[y, x] = last
    return n


@njit(cache=True)
def saccade_sample(
    img: np.ndarray,
    ox: np.ndarray,
    oy: np.ndarray,
    t_start: int,
    l_prev: np.ndarray,
    l_ref: np.ndarray,
    last_t: np.ndarray,
    lut: np.ndarray,
    consts: SaccadeConstants,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delta-encode frames 1..F of ``render_frames(img, consts.field, ox, oy, ...)`` (frame f at
    ``t_start + f * consts.frame_us``; frame 0 is the state's previous frame at ``t_start``) without
    building them: pixel by pixel, over time. Gives exactly what ``delta_frame`` gives frame by frame
    on those uint8 frames. Mutates ``l_prev``, ``l_ref`` and ``last_t`` (``(field, field)``). ``lut``
    is ``log_lut(log_eps)``; ``consts`` the stream's constants (see the module doc)."""
    field = consts.field
    nf = ox.shape[0]
    pad = field + 1
    padded = pad_image(img, pad)
    kx = np.empty(nf, dtype=np.int64)
    ky = np.empty(nf, dtype=np.int64)
    ax = np.empty(nf, dtype=np.float64)
    ay = np.empty(nf, dtype=np.float64)
    for f in range(nf):
        kx[f] = math.floor(ox[f])
        ky[f] = math.floor(oy[f])
        ax[f] = ox[f] - kx[f]
        ay[f] = oy[f] - ky[f]
    out_t = np.empty(8192, dtype=np.int64)
    out_i = np.empty(8192, dtype=np.int64)
    out_p = np.empty(8192, dtype=np.uint8)
    # Bounding box of the digit's non-zero pixels, and the range of the integer shifts: a pixel whose
    # taps never reach the box sees the background in every frame, so after frame 1 its log intensity
    # stays put and (the reference being within a threshold of it after frame 1) it cannot fire again.
    h, w = img.shape
    rmin, rmax, cmin, cmax = h, -1, w, -1
    for r in range(h):
        for c in range(w):
            if img[r, c] != 0.0:
                rmin = min(rmin, r)
                rmax = max(rmax, r)
                cmin = min(cmin, c)
                cmax = max(cmax, c)
    kxmin, kxmax, kymin, kymax = kx.min(), kx.max(), ky.min(), ky.max()
    # ink[r, c]: one of the four taps of padded position (r, c) is non-zero.
    ink = np.zeros(padded.shape, dtype=np.bool_)
    for r in range(1, padded.shape[0]):
        for c in range(1, padded.shape[1]):
            ink[r, c] = (
                padded[r, c] != 0.0 or padded[r, c - 1] != 0.0 or padded[r - 1, c] != 0.0 or padded[r - 1, c - 1] != 0.0
            )
    # Runs of frames 1..nf-1 with the same integer shift (kx, ky): runs[r] is the first frame of run r.
    runs = np.empty(nf + 1, dtype=np.int64)
    n_runs = 0
    for f in range(1, nf):
        if f == 1 or kx[f] != kx[f - 1] or ky[f] != ky[f - 1]:
            runs[n_runs] = f
            n_runs += 1
    runs[n_runs] = nf
    runs = runs[: n_runs + 1]
    tables = (padded, ink, kx, ky, ax, ay, runs, lut)
    state = (l_prev, l_ref, last_t)
    n = 0
    for y in range(field):
        for x in range(field):
            far = rmax < 0 or x - kxmax - 1 > cmax or x - kxmin < cmin or y - kymax - 1 > rmax or y - kymin < rmin
            frames = 2 if far else nf
            while True:
                m = _saccade_pixel(consts, t_start, tables, state, (out_t, out_i, out_p), n, x, y, frames)
                if m >= 0:
                    n = m
                    break
                out_t, out_i, out_p = _grow(out_t, out_i, out_p, 2 * out_t.shape[0])
    return sort_by_time_radix(out_t, out_i, out_p, n, t_start)
