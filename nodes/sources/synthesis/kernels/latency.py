"""Numba kernel of the latency encoder (``nodes.sources.synthesis.latency`` validates and builds records):
one spike per pixel at its time to first spike, one image after the other (snnTorch paper, section 2B)."""

from __future__ import annotations

import numpy as np
from numba import njit

#: ``kind`` codes of ``encode_latencies``
LINEAR = 0
LOG = 1


@njit(cache=True)
def first_spike_offset(x: float, kind: int, tau_us: float, threshold: float) -> float:
    """Time to first spike of a pixel of value ``x``, in µs after the image start; ``inf`` when it never
    spikes (``x <= threshold``). Linear: ``tau (1 - x)``; log (RC circuit, eq. 26): ``tau ln(x / (x - th))``."""
    if not x > threshold:
        return np.inf
    if kind == LINEAR:
        return tau_us * (1.0 - x)
    return float(tau_us * np.log(x / (x - threshold)))


@njit(cache=True)
def encode_latencies(
    pix: np.ndarray, t0: int, duration_us: int, kind: int, tau_us: float, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (absolute, µs, floored) and pixel indices of ``pix`` (n_images, n_pixels) float64 in
    [0, 1]. Image ``i`` covers ``[t0 + i * duration_us, t0 + (i + 1) * duration_us)``; a spike at or after
    its end is dropped. Sorted by time; ties in pixel order (a stable sort of a row-major scan)."""
    n_img, n_px = pix.shape
    out_t = np.empty(n_img * n_px, np.int64)
    out_p = np.empty(n_img * n_px, np.int64)
    img_t = np.empty(n_px, np.int64)
    img_p = np.empty(n_px, np.int64)
    n = 0
    dur = float(duration_us)
    for i in range(n_img):
        k = 0
        for p in range(n_px):
            off = first_spike_offset(pix[i, p], kind, tau_us, threshold)
            if off < dur:
                img_t[k] = np.int64(np.floor(off))
                img_p[k] = p
                k += 1
        order = np.argsort(img_t[:k], kind="mergesort")
        start = t0 + i * duration_us
        for j in range(k):
            out_t[n] = start + img_t[order[j]]
            out_p[n] = img_p[order[j]]
            n += 1
    return out_t[:n], out_p[:n]
