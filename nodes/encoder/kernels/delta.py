"""Numba kernels of the frame → event encoder (``nodes.encoder.delta`` owns the state and validates).

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
on ``t`` (``time_sort.sort_by_time_radix``) then gives time-ordered output with ties in pixel order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from nodes.encoder.kernels.time_sort import sort_by_time_radix


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
def crossing_time(t0: int, t1: int, l0: float, l1: float, level: float) -> int:
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
            t = crossing_time(t0, t1, l0, l1, ref)
            if refractory_us == 0 or t - last >= refractory_us:
                out_t[n] = t
                out_i[n] = pix
                out_p[n] = 1
                n += 1
                last = t
    else:
        while ref - l1 >= off_th:
            ref -= off_th
            t = crossing_time(t0, t1, l0, l1, ref)
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
