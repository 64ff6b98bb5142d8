"""Static images to one continuous, labelled event stream (thesis 3.3.1, "input spike encoding").

Each pixel of an image becomes a noisy periodic spike train:

* its rate is drawn once per image: ``r = max(0, v + rate_std * N(0, 1))`` times ``max_rate_hz``,
  where ``v`` in [0, 1] is the pixel value (uint8 images are divided by 255);
* the nominal inter-spike interval ``1 / r`` is multiplied by a fresh uniform number in [0, 1) at every
  spike, so the train starts at the image's start and each next spike comes ``U * 1e6 / r`` µs later.
  Because the mean of ``U`` is 1/2, the mean rate is *twice* the nominal ``r`` — that is how the thesis
  words it, and the defaults are chosen for the event count, not for the nominal rate;
* spikes at or after ``duration_us`` are dropped. Timestamps are floored to whole microseconds.

The defaults (200 Hz, 50 ms, std 0.05) give roughly the thesis's 1400-3500 events per MNIST digit
(the count grows with the digit's ink; the background adds a few events through the rate noise).
Images follow each other back to back with no gap: image ``k`` covers
``[t0 + k * duration_us, t0 + (k + 1) * duration_us)``. Every event has ``p = 1``; events are sorted by
``t`` (ties: row-major pixel order). A label record (``LABEL_DTYPE``) marks each image's start.

Randomness: image ``k`` (its index in the whole stream) gets its own 32-bit seed, a hash of
``(seed, k)``, which seeds numba's generator inside the kernel. The stream is therefore identical
whatever the chunk size used to produce it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nodes.sources.synthesis.kernels.rate import encode_rates
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE


@dataclass(frozen=True, kw_only=True)
class RateEncoderParams:
    """Parameters of the MNIST rate encoder (thesis 3.3.1; values are ours, tuned for the event count)."""

    #: nominal rate of a pixel of value 1, in Hz (> 0); the mean rate is twice this (see module doc)
    max_rate_hz: float = 200.0
    #: presentation time of one image in microseconds (>= 1)
    duration_us: int = 50_000
    #: standard deviation of the Gaussian the relative rate is drawn from, in pixel-value units (>= 0)
    rate_std: float = 0.05

    def __post_init__(self) -> None:
        if not self.max_rate_hz > 0:
            msg = f"max_rate_hz must be > 0, got {self.max_rate_hz}"
            raise ValueError(msg)
        if self.duration_us < 1:
            msg = f"duration_us must be >= 1, got {self.duration_us}"
            raise ValueError(msg)
        if not self.rate_std >= 0:
            msg = f"rate_std must be >= 0, got {self.rate_std}"
            raise ValueError(msg)


def image_seeds(seed: int, first_index: int, n: int) -> np.ndarray:
    """A 32-bit seed per image index ``first_index .. first_index + n - 1`` (splitmix64 of seed, index)."""
    if seed < 0:
        msg = f"seed must be >= 0, got {seed}"
        raise ValueError(msg)
    with np.errstate(over="ignore"):  # the hash relies on 64-bit wrap-around
        z = (np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.arange(
            first_index, first_index + n, dtype=np.uint64
        )
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(32)).astype(np.int64)


def _as_unit(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3:
        msg = f"images must have shape (N, height, width), got {images.shape}"
        raise ValueError(msg)
    if images.dtype == np.uint8:
        return images.reshape(len(images), -1).astype(np.float64) / 255.0
    if images.dtype.kind != "f":
        msg = f"images must be uint8 or float in [0, 1], got dtype {images.dtype}"
        raise ValueError(msg)
    if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 1 or np.isnan(images).any()):
        msg = "float images must lie in [0, 1] without NaN"
        raise ValueError(msg)
    return np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float64)


def images_to_stream(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    train: bool,
    params: RateEncoderParams | None = None,
    t0: int = 0,
    first_index: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``images`` (N, H, W) into ``(events EVENT_DTYPE, label records LABEL_DTYPE)``.

    Image ``k`` starts at ``t0 + k * duration_us`` and is seeded as stream image ``first_index + k``
    (so chunks encoded with matching ``t0``/``first_index`` concatenate to the one-shot stream).
    """
    params = params or RateEncoderParams()
    pix = _as_unit(images)
    labels = np.asarray(labels)
    if labels.shape != (len(pix),):
        msg = f"labels must have shape ({len(pix)},), got {labels.shape}"
        raise ValueError(msg)
    if len(labels) and (labels.min() < -1 or labels.max() > np.iinfo(np.int32).max):
        msg = f"labels must be >= -1, got minimum {labels.min()}"
        raise ValueError(msg)
    if t0 < 0 or first_index < 0:
        msg = f"t0 and first_index must be >= 0, got {t0}, {first_index}"
        raise ValueError(msg)
    height, width = np.shape(images)[1:]
    if height > 65535 or width > 65535:
        msg = f"image size {height}x{width} does not fit uint16 coordinates"
        raise ValueError(msg)
    seeds = image_seeds(seed, first_index, len(pix))
    t, p = encode_rates(pix, seeds, int(t0), int(params.duration_us), float(params.max_rate_hz), float(params.rate_std))
    events = np.zeros(len(t), dtype=EVENT_DTYPE)
    events["t"] = t
    events["x"] = p % width
    events["y"] = p // width
    events["p"] = 1
    recs = np.zeros(len(pix), dtype=LABEL_DTYPE)
    recs["t"] = t0 + np.arange(len(pix), dtype=np.int64) * params.duration_us
    recs["label"] = labels
    recs["train"] = 1 if train else 0
    return events, recs


def iter_stream(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    train: bool,
    params: RateEncoderParams | None = None,
    chunk_images: int = 1000,
    t0: int = 0,
    first_index: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(events, label records)`` for consecutive chunks of ``chunk_images`` images.

    The concatenated chunks equal ``images_to_stream`` of all images, whatever ``chunk_images``.
    """
    if chunk_images < 1:
        msg = f"chunk_images must be >= 1, got {chunk_images}"
        raise ValueError(msg)
    params = params or RateEncoderParams()
    for start in range(0, len(images), chunk_images):
        stop = min(start + chunk_images, len(images))
        yield images_to_stream(
            images[start:stop],
            labels[start:stop],
            seed=seed,
            train=train,
            params=params,
            t0=t0 + start * params.duration_us,
            first_index=first_index + start,
        )
