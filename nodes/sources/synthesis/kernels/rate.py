"""Numba kernel of the rate encoder (``nodes.sources.synthesis.rate`` validates, seeds and builds records):
noisy periodic spike trains, one image after the other (thesis 3.3.1)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def encode_rates(
    pix: np.ndarray, seeds: np.ndarray, t0: int, duration_us: int, max_rate_hz: float, rate_std: float
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (absolute, µs) and pixel indices of ``pix`` (n_images, n_pixels) float64 in [0, 1]."""
    n_img, n_px = pix.shape
    cap = max(1024, n_img * 2048)
    out_t = np.empty(cap, np.int64)
    out_p = np.empty(cap, np.int64)
    n = 0
    img_t = np.empty(4096, np.int64)
    img_p = np.empty(4096, np.int64)
    dur = float(duration_us)
    for i in range(n_img):
        np.random.seed(seeds[i])
        k = 0
        for p in range(n_px):
            r = pix[i, p]
            if rate_std > 0.0:
                r += rate_std * np.random.standard_normal()
            if r <= 0.0:
                continue
            isi = 1e6 / (r * max_rate_hz)
            tt = isi * np.random.random()
            while tt < dur:
                if k == img_t.shape[0]:
                    grown_t = np.empty(2 * k, np.int64)
                    grown_p = np.empty(2 * k, np.int64)
                    grown_t[:k] = img_t
                    grown_p[:k] = img_p
                    img_t = grown_t
                    img_p = grown_p
                img_t[k] = np.int64(np.floor(tt))
                img_p[k] = p
                k += 1
                tt += isi * np.random.random()
        order = np.argsort(img_t[:k], kind="mergesort")
        if n + k > out_t.shape[0]:
            new_cap = max(2 * out_t.shape[0], n + k)
            grown_t = np.empty(new_cap, np.int64)
            grown_p = np.empty(new_cap, np.int64)
            grown_t[:n] = out_t[:n]
            grown_p[:n] = out_p[:n]
            out_t = grown_t
            out_p = grown_p
        start = t0 + i * duration_us
        for q in range(k):
            out_t[n + q] = start + img_t[order[q]]
            out_p[n + q] = img_p[order[q]]
        n += k
    return out_t[:n], out_p[:n]
