"""Saccade digits: 28x28 digit images → an N-MNIST-like event stream.

N-MNIST (Orchard et al. 2015) was recorded by an ATIS sensor on a pan-tilt unit making three saccades of
about 100 ms each — a triangle — in front of a monitor showing a static MNIST digit; the digit moves
across a 34x34 pixel field. Here the same is simulated: the image is shifted (bilinear, sub-pixel) along
the three segments of a triangle inside the 34x34 field, sampled every ``frame_us``, and each frame is
delta-encoded (``synthesis.kernels.saccade``, the same per-pixel rule as ``DeltaEncoder``). The encoder state
carries over from one sample to the next: the stream is one continuous recording, and at the start of
each sample the monitor switches to the next digit (so the first frame interval of a sample shows the
switch, as a real continuous recording would: with the defaults about 500 of a sample's ~4,150
events fall in that first millisecond). Sensor noise: optional uniform background activity,
seeded per sample.

Images come from MNIST arrays passed in, or from ``font_digits.render_font_digits`` (no files needed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nodes.encoder.delta import events_from_arrays
from nodes.encoder.kernels import NO_EVENT_T
from nodes.encoder.kernels.delta import log_lut, lut_frame
from nodes.sources.synthesis.kernels.saccade import render_frames, saccade_sample
from pipeline.events import LABEL_DTYPE

DIGIT_SIZE = 28


@dataclass(frozen=True, kw_only=True)
class SaccadeParams:
    """How a digit image becomes a ~300 ms event sample."""

    #: Side of the square pixel field in which the digit moves (N-MNIST: 34).
    field: int = 34
    #: Duration of one saccade in µs (N-MNIST: about 100 ms; three per sample).
    saccade_us: int = 100_000
    #: Frame period of the simulated sensor sampling in µs (1000 = 1 kHz); must divide ``saccade_us``.
    frame_us: int = 1000
    #: Triangle corners as the digit's (x, y) offset in pixels inside the field; each coordinate in
    #: ``[0, field - 28]``. Saccades go 0 → 1 → 2 → 0 at constant speed.
    vertices: tuple[tuple[float, float], ...] = ((0.0, 0.0), (3.0, 6.0), (6.0, 0.0))
    #: Monitor intensity of a black pixel and the added intensity of a full-white one (uint8 units).
    background: float = 10.0
    contrast: float = 245.0
    #: Delta-modulation thresholds (natural-log units), refractory period (µs) and log offset. 0.7 was
    #: chosen so that MNIST test digits give about as many events as real N-MNIST samples (measured:
    #: mean ~4,150, range ~2,100-6,300 per sample, vs ~3,660 and 1,070-6,150 in 50 real N-MNIST files).
    on_threshold: float = 0.7
    off_threshold: float = 0.7
    refractory_us: int = 0
    log_eps: float = 1.0
    #: Uniform background-activity noise per pixel in Hz (0 = none); seeded per sample.
    noise_rate_hz: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.field, int) or self.field < DIGIT_SIZE or self.field > 65535:
            msg = f"SaccadeParams.field must be an int >= {DIGIT_SIZE}, got {self.field!r}"
            raise ValueError(msg)
        if not isinstance(self.frame_us, int) or self.frame_us <= 0:
            msg = f"SaccadeParams.frame_us must be an int > 0, got {self.frame_us!r}"
            raise ValueError(msg)
        if not isinstance(self.saccade_us, int) or self.saccade_us <= 0 or self.saccade_us % self.frame_us:
            msg = (
                f"SaccadeParams.saccade_us ({self.saccade_us!r}) must be a positive multiple of "
                f"frame_us ({self.frame_us})"
            )
            raise ValueError(msg)
        if len(self.vertices) != 3:
            msg = f"SaccadeParams.vertices must be 3 (x, y) corners, got {self.vertices!r}"
            raise ValueError(msg)
        room = self.field - DIGIT_SIZE
        for vx, vy in self.vertices:
            if not (0 <= vx <= room and 0 <= vy <= room):
                msg = (
                    f"saccade corner ({vx}, {vy}) moves the digit out of the {self.field}x{self.field} "
                    f"field; each coordinate must be in [0, {room}]"
                )
                raise ValueError(msg)
        for name in ("on_threshold", "off_threshold", "log_eps", "contrast"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                msg = f"SaccadeParams.{name} must be finite and > 0, got {v!r}"
                raise ValueError(msg)
        if not (math.isfinite(self.background) and self.background >= 0):
            msg = f"SaccadeParams.background must be >= 0, got {self.background!r}"
            raise ValueError(msg)
        if self.background + self.contrast > 255:
            msg = (
                f"SaccadeParams.background + contrast = {self.background + self.contrast} exceeds 255 "
                "(frames are uint8)"
            )
            raise ValueError(msg)
        if not isinstance(self.refractory_us, int) or self.refractory_us < 0:
            msg = f"SaccadeParams.refractory_us must be an int >= 0, got {self.refractory_us!r}"
            raise ValueError(msg)
        if not (math.isfinite(self.noise_rate_hz) and self.noise_rate_hz >= 0):
            msg = f"SaccadeParams.noise_rate_hz must be >= 0, got {self.noise_rate_hz!r}"
            raise ValueError(msg)

    @property
    def sample_us(self) -> int:
        """Duration of one sample (three saccades) in µs."""
        return 3 * self.saccade_us


class SaccadeConstants(NamedTuple):
    """The saccade kernels' scalar constants as one record (numba takes it as a typed tuple)."""

    field: int
    frame_us: int
    on_threshold: float
    off_threshold: float
    refractory_us: int
    background: float
    contrast: float
    #: log intensity of a blank pixel (the background alone), from the stream's log table
    l_background: float

    @classmethod
    def of(cls, params: SaccadeParams, lut: np.ndarray) -> SaccadeConstants:
        """The constants of ``params``; ``lut`` is the stream's log-intensity table."""
        background, contrast = float(params.background), float(params.contrast)
        return cls(
            field=int(params.field),
            frame_us=int(params.frame_us),
            on_threshold=float(params.on_threshold),
            off_threshold=float(params.off_threshold),
            refractory_us=int(params.refractory_us),
            background=background,
            contrast=contrast,
            l_background=float(lut[math.floor(background + contrast * 0.0 + 0.5)]),
        )


def saccade_path(params: SaccadeParams) -> tuple[np.ndarray, np.ndarray]:
    """Digit offsets ``(ox, oy)`` at frames ``0..F`` of a sample (frame ``f`` at ``f * frame_us``;
    frame 0 and frame F are both at the first corner)."""
    seg = params.saccade_us // params.frame_us
    f = np.arange(3 * seg + 1)
    s = np.minimum(f // seg, 2)
    r = (f - s * seg) / seg
    v = np.asarray(params.vertices, dtype=np.float64)
    a = v[s]
    b = v[(s + 1) % 3]
    pos = a + r[:, None] * (b - a)
    return np.ascontiguousarray(pos[:, 0]), np.ascontiguousarray(pos[:, 1])


def _check_images(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or images.dtype != np.uint8:
        msg = f"images must be uint8 (n, 28, 28), got {images.dtype} {images.shape}"
        raise ValueError(msg)
    if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
        msg = f"labels must be integers of shape ({images.shape[0]},), got {labels.dtype} {labels.shape}"
        raise ValueError(msg)
    return images, labels


def render_saccade_frames(image: np.ndarray, params: SaccadeParams) -> tuple[np.ndarray, np.ndarray]:
    """The frames a sample is made of, for inspection and tests: ``(frames uint8 (F+1, field, field),
    times µs from the sample start)``. ``saccade_stream`` encodes frames 1..F."""
    image = np.asarray(image)
    if image.shape != (DIGIT_SIZE, DIGIT_SIZE) or image.dtype != np.uint8:
        msg = f"image must be uint8 (28, 28), got {image.dtype} {image.shape}"
        raise ValueError(msg)
    ox, oy = saccade_path(params)
    img = image.astype(np.float64) / 255.0
    frames = render_frames(img, params.field, ox, oy, float(params.background), float(params.contrast))
    return frames, np.arange(ox.shape[0], dtype=np.int64) * params.frame_us


def saccade_stream(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    params: SaccadeParams | None = None,
    t0: int = 0,
    train: bool = True,
    samples_per_chunk: int = 16,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One continuous event stream of the samples in order, as ``(events, labels)`` chunks of up to
    ``samples_per_chunk`` samples.

    Sample ``i`` starts at ``t0 + i * params.sample_us`` with a label record ``(start, label, train)``;
    its events lie in ``(start, start + sample_us]``, coordinates within ``field x field``. Events
    are time-ordered across the whole stream. Deterministic for a given ``seed`` (which drives the
    noise events).
    """
    params = params if params is not None else SaccadeParams()
    images, labels = _check_images(images, labels)
    if samples_per_chunk < 1:
        msg = f"samples_per_chunk must be >= 1, got {samples_per_chunk}"
        raise ValueError(msg)
    fld = params.field
    ox, oy = saccade_path(params)
    lut = log_lut(float(params.log_eps))
    consts = SaccadeConstants.of(params, lut)
    l_prev = np.empty((fld, fld), dtype=np.float64)
    l_ref = np.empty((fld, fld), dtype=np.float64)
    last_t = np.full((fld, fld), NO_EVENT_T, dtype=np.int64)
    noise_mean = params.noise_rate_hz * fld * fld * params.sample_us * 1e-6
    n = images.shape[0]
    for c0 in range(0, n, samples_per_chunk):
        c1 = min(c0 + samples_per_chunk, n)
        ts: list[np.ndarray] = []
        idxs: list[np.ndarray] = []
        ps: list[np.ndarray] = []
        lab = np.zeros(c1 - c0, dtype=LABEL_DTYPE)
        for i in range(c0, c1):
            img = images[i].astype(np.float64) / 255.0
            start = t0 + i * params.sample_us
            if i == 0:
                first = render_frames(img, fld, ox[:1], oy[:1], float(params.background), float(params.contrast))
                lut_frame(first[0], lut, l_prev)
                l_ref[:] = l_prev
            t, idx, p = saccade_sample(img, ox, oy, start, l_prev, l_ref, last_t, lut, consts)
            ts.append(t)
            idxs.append(idx)
            ps.append(p)
            lab[i - c0] = (start, int(labels[i]), int(train))
        if noise_mean > 0:
            # Sensor noise, seeded per sample (so chunking does not change it); appended after the
            # signal so that a stable sort puts it after signal events of the same microsecond.
            for i in range(c0, c1):
                rng = np.random.default_rng([seed, i])
                k = int(rng.poisson(noise_mean))
                ts.append(t0 + i * params.sample_us + 1 + rng.integers(0, params.sample_us, k))
                idxs.append(rng.integers(0, fld * fld, k))
                ps.append(rng.integers(0, 2, k).astype(np.uint8))
        t_all = np.concatenate(ts)
        order = np.argsort(t_all, kind="stable")
        yield events_from_arrays(t_all[order], np.concatenate(idxs)[order], np.concatenate(ps)[order], fld), lab
