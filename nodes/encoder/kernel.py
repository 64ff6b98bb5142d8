"""Numba kernels of the frame → event encoder and of the event transform.

Only ``@njit`` functions over plain arrays and scalars live here; ``delta.py``, ``events.py`` and
``saccade.py`` own the state arrays, validate input and build ``EVENT_DTYPE`` records.

Delta modulation (one pixel, one frame interval ``(t0, t1]``)
-------------------------------------------------------------
``l0`` is the pixel's log intensity at ``t0``, ``l1`` the one at ``t1`` (``log(I + eps)``), ``ref`` the
pixel's reference level. While ``l1 - ref >= on_th``: ``ref += on_th`` and an ON event is due; otherwise,
while ``ref - l1 >= off_th``: ``ref -= off_th`` and an OFF event is due. The log intensity is taken to
move linearly from ``l0`` to ``l1`` over the interval, so the k-th event happens where that line meets
the updated reference ``ref_k`` (the level just crossed):

    frac_k = (ref_k - l0) / (l1 - l0),     t_k = t0 + ceil(frac_k * (t1 - t0))

clamped to ``[t0 + 1, t1]``: the first whole microsecond at or after the crossing, so every event
lies in ``(t0, t1]``. Refractory period: an event less than ``refractory_us`` after the pixel's last
*emitted* event is dropped; the reference level still moves (the change is consumed, as in a pixel
that was busy resetting), so a dead pixel does not fire a burst afterwards. ``refractory_us == 0``
disables it.

Order: events are generated pixel by pixel (y-major) and, within a pixel, in time order; a stable sort
on ``t`` (radix, ``sort_by_time_radix``) then gives time-ordered output with ties in pixel order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: "No event yet" in the per-pixel last-timestamp maps (far in the past, safe to subtract from).
NO_EVENT_T = -(2**62)

# Indices of the EventTransform counters array.
C_IN = 0  # events seen
C_CROPPED = 1  # dropped: outside the crop window
C_POLARITY = 2  # dropped: polarity not mapped to a channel (channels=1, ON only)
C_BA = 3  # dropped: background-activity filter
C_REFRACTORY = 4  # dropped: refractory filter
C_OUT = 5  # events emitted
N_COUNTERS = 6


# --------------------------------------------------------------------------------------------- delta


@njit(cache=True)
def count_crossings(l1: float, ref: float, on_th: float, off_th: float) -> int:
    """How many events the move of a pixel to log level ``l1`` from reference ``ref`` causes."""
    n = 0
    if l1 - ref >= on_th:
        while l1 - ref >= on_th:
            ref += on_th
            n += 1
    else:
        while ref - l1 >= off_th:
            ref -= off_th
            n += 1
    return n


@njit(cache=True)
def _crossing_time(t0: int, t1: int, l0: float, l1: float, level: float) -> int:
    """First whole microsecond in ``(t0, t1]`` at or after the line ``l0 → l1`` meets ``level``."""
    dl = l1 - l0
    frac = 1.0 if dl == 0.0 else (level - l0) / dl
    t = t0 + math.ceil(frac * (t1 - t0))
    if t <= t0:
        t = t0 + 1
    elif t > t1:
        t = t1
    return t


@njit(cache=True)
def emit_pixel(
    l0: float,
    l1: float,
    ref: float,
    last: int,
    t0: int,
    t1: int,
    on_th: float,
    off_th: float,
    refractory_us: int,
    pix: int,
    out_t: np.ndarray,
    out_i: np.ndarray,
    out_p: np.ndarray,
    n: int,
) -> tuple[float, int, int]:
    """Emit one pixel's events for the interval ``(t0, t1]`` at ``out_*[n:]`` (room for
    ``count_crossings`` of them is the caller's job). Returns ``(new_ref, new_last, new_n)``."""
    if l1 - ref >= on_th:
        while l1 - ref >= on_th:
            ref += on_th
            t = _crossing_time(t0, t1, l0, l1, ref)
            if refractory_us == 0 or t - last >= refractory_us:
                out_t[n] = t
                out_i[n] = pix
                out_p[n] = 1
                n += 1
                last = t
    else:
        while ref - l1 >= off_th:
            ref -= off_th
            t = _crossing_time(t0, t1, l0, l1, ref)
            if refractory_us == 0 or t - last >= refractory_us:
                out_t[n] = t
                out_i[n] = pix
                out_p[n] = 0
                n += 1
                last = t
    return ref, last, n


@njit(cache=True)
def log_frame(frame: np.ndarray, eps: float, out: np.ndarray) -> None:
    """``out[y, x] = log(frame[y, x] + eps)`` (scalar libm log, same as ``math.log``)."""
    h, w = frame.shape
    for y in range(h):
        for x in range(w):
            out[y, x] = math.log(frame[y, x] + eps)


@njit(cache=True)
def log_lut(eps: float) -> np.ndarray:
    """``lut[i] = log(i + eps)`` for the 256 values of a uint8 frame (same numbers as ``log_frame``)."""
    lut = np.empty(256, dtype=np.float64)
    for i in range(256):
        lut[i] = math.log(float(i) + eps)
    return lut


@njit(cache=True)
def lut_frame(frame: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    """``out[y, x] = lut[frame[y, x]]`` for a uint8 frame."""
    h, w = frame.shape
    for y in range(h):
        for x in range(w):
            out[y, x] = lut[frame[y, x]]


@njit(cache=True)
def sort_by_time_radix(
    out_t: np.ndarray, out_i: np.ndarray, out_p: np.ndarray, n: int, t_lo: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` events sorted on ``t`` (stable: ties keep generation order), for ``t >= t_lo``:
    an LSD radix sort of ``t - t_lo`` in 11-bit digits (linear time; a 300 ms sample needs 2 passes)."""
    t = out_t[:n].copy()
    i = out_i[:n].copy()
    p = out_p[:n].copy()
    if n == 0:
        return t, i, p
    span = t.max() - t_lo
    t2 = np.empty(n, dtype=np.int64)
    i2 = np.empty(n, dtype=np.int64)
    p2 = np.empty(n, dtype=np.uint8)
    pos = np.empty(2048, dtype=np.int64)
    shift = 0
    while (span >> shift) > 0:
        pos[:] = 0
        for k in range(n):
            pos[((t[k] - t_lo) >> shift) & 2047] += 1
        acc = 0
        for d in range(2048):
            c = pos[d]
            pos[d] = acc
            acc += c
        for k in range(n):
            d = ((t[k] - t_lo) >> shift) & 2047
            j = pos[d]
            t2[j] = t[k]
            i2[j] = i[k]
            p2[j] = p[k]
            pos[d] = j + 1
        t, t2 = t2, t
        i, i2 = i2, i
        p, p2 = p2, p
        shift += 11
    return t, i, p


@njit(cache=True)
def delta_frame(
    l_new: np.ndarray,
    t0: int,
    t1: int,
    l_prev: np.ndarray,
    l_ref: np.ndarray,
    last_t: np.ndarray,
    on_th: float,
    off_th: float,
    refractory_us: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode one frame, given as its log intensity ``l_new`` (``(H, W)``, at ``t1``; the previous
    frame was at ``t0``). Mutates ``l_prev`` (becomes ``l_new``), ``l_ref`` and ``last_t``.
    Returns time-sorted ``(t, pixel index y * W + x, p)`` arrays.
    """
    h, w = l_new.shape
    total = 0
    for y in range(h):
        for x in range(w):
            total += count_crossings(l_new[y, x], l_ref[y, x], on_th, off_th)
    out_t = np.empty(total, dtype=np.int64)
    out_i = np.empty(total, dtype=np.int64)
    out_p = np.empty(total, dtype=np.uint8)
    n = 0
    for y in range(h):
        for x in range(w):
            l1 = l_new[y, x]
            ref = l_ref[y, x]
            if l1 - ref >= on_th or ref - l1 >= off_th:
                ref, last, n = emit_pixel(
                    l_prev[y, x], l1, ref, last_t[y, x], t0, t1, on_th, off_th, refractory_us,
                    y * w + x, out_t, out_i, out_p, n,
                )  # fmt: skip
                l_ref[y, x] = ref
                last_t[y, x] = last
            l_prev[y, x] = l1
    return sort_by_time_radix(out_t, out_i, out_p, n, t0)


# ------------------------------------------------------------------------------------------ saccade
#
# A digit image (values in [0, 1]) is drawn shifted right by ox and down by oy pixels. With
# k = floor(ox), a = ox - k, pixel column x blends image columns x - k (weight 1 - a) and x - k - 1
# (weight a); rows likewise. The image is zero-padded by ``pad = field + 1`` on every side so no
# bounds checks are needed. The monitor's intensity is quantised to uint8: q = floor(background + contrast * v + 0.5),
# and its log comes from ``log_lut`` -- exactly what DeltaEncoder computes for a uint8 frame.


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
    v = top * (1.0 - ay) + bot * ay
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
def _grow(out_t: np.ndarray, out_i: np.ndarray, out_p: np.ndarray, need: int):
    cap = max(2 * out_t.shape[0], need)
    t2 = np.empty(cap, dtype=np.int64)
    i2 = np.empty(cap, dtype=np.int64)
    p2 = np.empty(cap, dtype=np.uint8)
    m = out_t.shape[0]
    t2[:m] = out_t
    i2[:m] = out_i
    p2[:m] = out_p
    return t2, i2, p2


@njit(cache=True)
def _saccade_pixel(
    padded: np.ndarray,
    pad: int,
    x: int,
    y: int,
    pix: int,
    kx: np.ndarray,
    ky: np.ndarray,
    ax: np.ndarray,
    ay: np.ndarray,
    t_start: int,
    frame_us: int,
    l_prev: np.ndarray,
    l_ref: np.ndarray,
    last_t: np.ndarray,
    on_th: float,
    off_th: float,
    refractory_us: int,
    lut: np.ndarray,
    background: float,
    contrast: float,
    out_t: np.ndarray,
    out_i: np.ndarray,
    out_p: np.ndarray,
    n: int,
    n_frames: int,
    ink: np.ndarray,
    l_background: float,
    runs: np.ndarray,
) -> int:
    """One pixel of ``saccade_sample`` over frames ``1 .. n_frames - 1``. Returns the new ``n``, or -1
    (state left untouched) when the output arrays are too small.

    ``runs[r]:runs[r + 1]`` are the frames of the r-th run of equal integer shift. Where the pixel's
    taps hold no ink during a run, it sees exactly the background level in each of its frames; only
    the first of them can fire (after it, the reference is within a threshold of that same level), so
    the others are skipped -- the result is the same as stepping through them."""
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
                l1 = lut[_shifted_q(padded, pad, x, y, kx[f], ky[f], ax[f], ay[f], background, contrast)]
            else:  # all four taps are 0: exactly the background level, no interpolation needed
                l1 = l_background
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
                    t = _crossing_time(t0, t0 + frame_us, l0, l1, ref)
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
    field: int,
    ox: np.ndarray,
    oy: np.ndarray,
    t_start: int,
    frame_us: int,
    l_prev: np.ndarray,
    l_ref: np.ndarray,
    last_t: np.ndarray,
    on_th: float,
    off_th: float,
    refractory_us: int,
    lut: np.ndarray,
    background: float,
    contrast: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delta-encode frames 1..F of ``render_frames(img, field, ox, oy, ...)`` (frame f at
    ``t_start + f * frame_us``; frame 0 is the state's previous frame at ``t_start``) without
    building them: pixel by pixel, over time. Gives exactly what ``delta_frame`` gives frame by frame
    on those uint8 frames. Mutates ``l_prev``, ``l_ref`` and ``last_t`` (``(field, field)``)."""
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
    l_background = lut[math.floor(background + contrast * 0.0 + 0.5)]
    # Runs of frames 1..nf-1 with the same integer shift (kx, ky): runs[r] is the first frame of run r.
    runs = np.empty(nf + 1, dtype=np.int64)
    n_runs = 0
    for f in range(1, nf):
        if f == 1 or kx[f] != kx[f - 1] or ky[f] != ky[f - 1]:
            runs[n_runs] = f
            n_runs += 1
    runs[n_runs] = nf
    runs = runs[: n_runs + 1]
    n = 0
    for y in range(field):
        for x in range(field):
            far = rmax < 0 or x - kxmax - 1 > cmax or x - kxmin < cmin or y - kymax - 1 > rmax or y - kymin < rmin
            frames = 2 if far else nf
            while True:
                m = _saccade_pixel(
                    padded, pad, x, y, y * field + x, kx, ky, ax, ay, t_start, frame_us, l_prev, l_ref,
                    last_t, on_th, off_th, refractory_us, lut, background, contrast, out_t, out_i, out_p, n, frames,
                    ink, l_background, runs,
                )  # fmt: skip
                if m >= 0:
                    n = m
                    break
                out_t, out_i, out_p = _grow(out_t, out_i, out_p, 2 * out_t.shape[0])
    return sort_by_time_radix(out_t, out_i, out_p, n, t_start)


# ---------------------------------------------------------------------------------- event transform


@njit(cache=True)
def transform_events(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    x0: int,
    y0: int,
    crop_w: int,
    crop_h: int,
    out_w: int,
    out_h: int,
    channels: int,
    merge_polarities: bool,
    ba_window_us: int,
    refractory_us: int,
    ba_last: np.ndarray,
    refr_last: np.ndarray,
    counters: np.ndarray,
    out_t: np.ndarray,
    out_x: np.ndarray,
    out_y: np.ndarray,
    out_c: np.ndarray,
) -> int:
    """Crop → background-activity filter (crop geometry) → downsample → channel → refractory filter
    (per output pixel and channel), one event at a time, in order. Writes the kept events to
    ``out_*[:n]`` and returns ``n``.

    ``ba_last`` (``(crop_h, crop_w)``) holds the time of the last event at each cropped pixel (every
    event that reaches the filter updates it, kept or not); an event is kept when one of its 8
    neighbours has ``t - last <= ba_window_us``. ``refr_last`` (``(channels, out_h, out_w)``) holds the
    time of the last *emitted* event; an event with ``t - last < refractory_us`` is dropped.
    A window of 0 disables that filter. ``counters`` is indexed by the ``C_*`` constants.
    """
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
