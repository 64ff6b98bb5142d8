"""Static images to one labelled event stream by latency (time-to-first-spike) coding.

The snnTorch paper (``../shared/seeds/004_*``, section 2B and appendix B2) codes a pixel's intensity ``x``
in [0, 1] as the time of its one spike: bright pixels spike early, dark ones late or never.

* ``kind = "linear"``: ``t = tau (1 - x)``;
* ``kind = "log"``: the time an RC circuit driven by ``x`` takes to charge to ``threshold``,
  ``t = tau ln(x / (x - threshold))`` (eq. 26) — logarithmic in the intensity, as sensory transduction is.

A pixel with ``x <= threshold`` never spikes (both kinds), and a spike at or after the presentation's end
(``duration_us``) is dropped. ``normalize`` chooses ``tau`` so that the codes use the whole window: the
weakest value that spikes, ``threshold + epsilon``, spikes in the window's last microsecond (snnTorch's
``normalize``; for a uint8 image ``epsilon = 1/255`` is the smallest step), so values between
``threshold`` and ``threshold + epsilon`` fall after the window and are dropped, as with snnTorch's
``clip``. Otherwise ``tau_us`` is taken as given. Timestamps are floored to whole microseconds.

The stream has the rate code's layout (``nodes.sources.synthesis.rate``): image ``k`` covers
``[t0 + k * duration_us, t0 + (k + 1) * duration_us)``, every event has ``p = 1``, events are sorted by
``t`` (ties: row-major pixel order), and a label record marks each image's start. There is no randomness:
the stream is a pure function of the images and the parameters, so it is the same whatever the chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nodes.sources.synthesis.kernels.latency import LINEAR, LOG, encode_latencies
from nodes.sources.synthesis.rate import _as_unit
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE


@dataclass(frozen=True, kw_only=True)
class LatencyEncoderParams:
    """Parameters of the latency encoder (snnTorch ``spikegen.latency``, in microseconds)."""

    #: "linear" (t = tau (1 - x)) or "log" (RC circuit, t = tau ln(x / (x - threshold)))
    kind: Literal["linear", "log"] = "linear"
    #: presentation time of one image in µs (>= 1); spikes at or after it are dropped
    duration_us: int = 50_000
    #: pixels with a value at or below it never spike, in pixel-value units, in [0, 1)
    threshold: float = 0.01
    #: scale ``tau`` so that the weakest spiking value (``threshold + epsilon``) spikes at the window's end
    normalize: bool = True
    #: the time constant in µs when ``normalize`` is off (> 0)
    tau_us: float = 10_000.0
    #: see ``normalize``: the smallest value step above the threshold, in (0, 1]
    epsilon: float = 1.0 / 255.0

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "log"):
            msg = f"kind must be 'linear' or 'log', got {self.kind!r}"
            raise ValueError(msg)
        if self.duration_us < 1:
            msg = f"duration_us must be >= 1, got {self.duration_us}"
            raise ValueError(msg)
        if not 0.0 <= self.threshold < 1.0:
            msg = f"threshold must be in [0, 1), got {self.threshold}"
            raise ValueError(msg)
        if not self.tau_us > 0 or not math.isfinite(self.tau_us):
            msg = f"tau_us must be a finite number > 0, got {self.tau_us}"
            raise ValueError(msg)
        if not 0.0 < self.epsilon <= 1.0:
            msg = f"epsilon must be in (0, 1], got {self.epsilon}"
            raise ValueError(msg)
        if self.kind == "log" and self.threshold == 0.0:
            msg = "a log (RC) latency code needs threshold > 0: with 0 every pixel would spike at t = 0"
            raise ValueError(msg)

    @property
    def tau(self) -> float:
        """The time constant in µs that the encoder uses (``normalize`` or ``tau_us``)."""
        if not self.normalize:
            return self.tau_us
        last = float(self.duration_us) - 1.0
        weakest = min(self.threshold + self.epsilon, 1.0)
        if self.kind == "linear":
            span = 1.0 - weakest
            return last / span if span > 0 else max(last, 1.0)
        return last / math.log(weakest / (weakest - self.threshold))

    @property
    def kind_code(self) -> int:
        """The kernel's code of ``kind``."""
        return LINEAR if self.kind == "linear" else LOG


def latency_stream(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    train: bool,
    params: LatencyEncoderParams | None = None,
    t0: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``images`` (N, H, W; uint8 or float in [0, 1]) into ``(events EVENT_DTYPE, labels LABEL_DTYPE)``,
    image ``k`` starting at ``t0 + k * duration_us`` (chunks encoded with matching ``t0`` concatenate)."""
    params = params or LatencyEncoderParams()
    pix = _as_unit(images)
    labels = np.asarray(labels)
    if labels.shape != (len(pix),):
        msg = f"labels must have shape ({len(pix)},), got {labels.shape}"
        raise ValueError(msg)
    if len(labels) and labels.min() < -1:
        msg = f"labels must be >= -1, got minimum {labels.min()}"
        raise ValueError(msg)
    if t0 < 0:
        msg = f"t0 must be >= 0, got {t0}"
        raise ValueError(msg)
    height, width = np.shape(images)[1:]
    if height > 65535 or width > 65535:
        msg = f"image size {height}x{width} does not fit uint16 coordinates"
        raise ValueError(msg)
    t, p = encode_latencies(
        pix, int(t0), int(params.duration_us), params.kind_code, float(params.tau), float(params.threshold)
    )
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
