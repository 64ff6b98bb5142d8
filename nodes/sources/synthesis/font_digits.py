"""MNIST-like digit images drawn with OpenCV's built-in Hershey fonts: digits with no files needed.

Seeded jitter of font, scale, stroke, slant, rotation and offset makes each class vary, so a network
has something to generalise over (the demo and ``type = "saccades"`` with ``digits = "font"``).

The digits are drawn with OpenCV's SIMD code switched off: in OpenCV 5.1 its vectorised ``warpAffine``
rounds some pixels differently from its plain code (74 of the demo's 8.3 M events), and OpenCV picks its
vector kernels by CPU at run time; the plain code draws the same digits on every CPU. The OpenCV version
still matters: 4.14, 5.0 and 5.1 draw slightly different digits (the README gives the demo's figures).
"""

from __future__ import annotations

import cv2
import numpy as np

from nodes.sources.synthesis.saccade import DIGIT_SIZE


def render_font_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digit images drawn with OpenCV's Hershey fonts, MNIST-like (white on black, the digit
    scaled into a 20x20 box and centred by its centre of mass in 28x28), with seeded jitter of font,
    scale, stroke thickness, slant, rotation and offset. Returns ``(images uint8 (n, 28, 28),
    labels int64 (n,))``; labels are drawn uniformly from 0..9."""
    if not isinstance(n, int) or n < 0:
        msg = f"n must be an int >= 0, got {n!r}"
        raise ValueError(msg)
    optimized = cv2.useOptimized()
    cv2.setUseOptimized(False)  # the same pixels on every CPU (see the module doc)
    try:
        return _render(n, seed)
    finally:
        cv2.setUseOptimized(optimized)


def _render(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fonts = (
        cv2.FONT_HERSHEY_SIMPLEX,
        cv2.FONT_HERSHEY_DUPLEX,
        cv2.FONT_HERSHEY_COMPLEX,
        cv2.FONT_HERSHEY_TRIPLEX,
        cv2.FONT_HERSHEY_PLAIN,
    )
    labels = rng.integers(0, 10, n).astype(np.int64)
    images = np.zeros((n, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    big = 112
    for i in range(n):
        font = fonts[int(rng.integers(len(fonts)))]
        italic = cv2.FONT_ITALIC if rng.random() < 0.3 else 0
        scale = (2.6 if font != cv2.FONT_HERSHEY_PLAIN else 5.0) * rng.uniform(0.8, 1.2)
        thick = int(rng.integers(5, 13))
        canvas = np.zeros((big, big), dtype=np.uint8)
        text = str(int(labels[i]))
        (tw, th), _ = cv2.getTextSize(text, font | italic, scale, thick)
        org = ((big - tw) // 2, (big + th) // 2)
        cv2.putText(canvas, text, org, font | italic, scale, 255, thick, cv2.LINE_AA)
        angle = rng.uniform(-15.0, 15.0)
        shear = rng.uniform(-0.2, 0.2)
        m = cv2.getRotationMatrix2D((big / 2, big / 2), angle, 1.0)
        m[0, 1] += shear
        m[0, 2] -= shear * big / 2
        warped = cv2.warpAffine(canvas, m, (big, big), flags=cv2.INTER_LINEAR)
        ys, xs = np.nonzero(warped)
        if ys.size == 0:
            continue
        crop = warped[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        h, w = crop.shape
        f = 20.0 / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        small = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
        mass = small.astype(np.float64)
        total = mass.sum()
        cy = (mass.sum(axis=1) @ np.arange(nh)) / total if total else nh / 2
        cx = (mass.sum(axis=0) @ np.arange(nw)) / total if total else nw / 2
        dy = int(rng.integers(-1, 2))
        dx = int(rng.integers(-1, 2))
        top = int(np.clip(round(14 - cy) + dy, 0, DIGIT_SIZE - nh))
        left = int(np.clip(round(14 - cx) + dx, 0, DIGIT_SIZE - nw))
        images[i, top : top + nh, left : left + nw] = small
    return images, labels
