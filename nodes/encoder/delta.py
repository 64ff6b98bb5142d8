"""Frames → address events by delta modulation of log intensity (an idealised DVS pixel).

``DeltaEncoder`` owns the per-pixel state (reference level, last log intensity, last event time) and
turns each grayscale frame into the ``EVENT_DTYPE`` events that happened since the previous frame.
The per-pixel rule, the timestamp interpolation formula and the refractory choice are documented in
``nodes.encoder.kernels.delta``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nodes.encoder.kernels import NO_EVENT_T
from nodes.encoder.kernels import delta as kernel
from pipeline.events import EVENT_DTYPE


@dataclass(frozen=True, kw_only=True)
class DeltaParams:
    """Parameters of the delta-modulation encoder."""

    #: ON contrast threshold: rise of ``log(I + eps)`` per ON event (natural-log units, > 0). A DVS
    #: has about 0.1-0.3 (dv-processing / v2e default 0.2).
    on_threshold: float = 0.2
    #: OFF contrast threshold: fall of ``log(I + eps)`` per OFF event (> 0).
    off_threshold: float = 0.2
    #: Per-pixel refractory period in µs (>= 0, 0 = none): an event less than this after the pixel's
    #: last emitted event is dropped; the reference level still moves.
    refractory_us: int = 0
    #: Added to the intensity before the log (> 0), in the frame's own units (1.0 for uint8 frames).
    log_eps: float = 1.0

    def __post_init__(self) -> None:
        for name in ("on_threshold", "off_threshold", "log_eps"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                msg = f"DeltaParams.{name} must be a finite number > 0, got {v!r}"
                raise ValueError(msg)
        if not isinstance(self.refractory_us, int) or self.refractory_us < 0:
            msg = f"DeltaParams.refractory_us must be an int >= 0, got {self.refractory_us!r}"
            raise ValueError(msg)


def events_from_arrays(t: np.ndarray, idx: np.ndarray, p: np.ndarray, width: int) -> np.ndarray:
    """``EVENT_DTYPE`` records from kernel output (pixel index ``y * width + x``)."""
    out = np.zeros(t.shape[0], dtype=EVENT_DTYPE)  # zeros: padding bytes deterministic on the wire
    out["t"] = t
    out["x"] = idx % width
    out["y"] = idx // width
    out["p"] = p
    return out


class DeltaEncoder:
    """Stateful frame → event encoder for a ``width`` x ``height`` grayscale sensor.

    The first frame only sets the reference levels and emits nothing. Each later frame, at a time
    strictly after the previous one, returns that interval's events sorted by ``t`` (ties in pixel
    order, y-major), every ``t`` in ``(t_previous, t_frame]``.
    """

    def __init__(self, width: int, height: int, params: DeltaParams | None = None) -> None:
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            msg = f"sensor size must be positive ints, got width={width!r} height={height!r}"
            raise ValueError(msg)
        if width > 65535 or height > 65535:
            msg = f"sensor size {width}x{height} does not fit the uint16 event coordinates"
            raise ValueError(msg)
        self.width = width
        self.height = height
        self.params = params if params is not None else DeltaParams()
        self._l_prev = np.zeros((height, width), dtype=np.float64)
        self._l_ref = np.zeros((height, width), dtype=np.float64)
        self._last_t = np.full((height, width), NO_EVENT_T, dtype=np.int64)
        self._t_prev: int | None = None
        self._lut = kernel.log_lut(float(self.params.log_eps))

    @property
    def initialised(self) -> bool:
        """True once a first frame has set the reference levels."""
        return self._t_prev is not None

    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width):
            msg = (
                f"frame has shape {frame.shape}, expected (height, width) = ({self.height}, {self.width}) "
                "grayscale; convert colour frames first (e.g. cv2.cvtColor(..., cv2.COLOR_BGR2GRAY))"
            )
            raise ValueError(msg)
        if frame.dtype == np.uint8:
            return np.ascontiguousarray(frame)
        if frame.dtype.kind not in "fiu":
            msg = f"frame dtype {frame.dtype} is not numeric; pass uint8 or float intensities"
            raise ValueError(msg)
        f = np.ascontiguousarray(frame, dtype=np.float64)
        lo = float(f.min()) if f.size else 0.0
        if not np.isfinite(f).all() or lo + self.params.log_eps <= 0:
            msg = f"frame intensities must be finite and > -log_eps ({-self.params.log_eps}); min is {lo}"
            raise ValueError(msg)
        return f

    def _log(self, frame: np.ndarray) -> np.ndarray:
        out = np.empty((self.height, self.width), dtype=np.float64)
        if frame.dtype == np.uint8:
            kernel.lut_frame(frame, self._lut, out)  # same numbers as log_frame, 256 logs only
        else:
            kernel.log_frame(frame, float(self.params.log_eps), out)
        return out

    def encode(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Events caused by ``frame`` (grayscale ``(height, width)``, uint8 or float) taken at ``t_us``."""
        f = self._check_frame(frame)
        t1 = int(t_us)
        if self._t_prev is not None and t1 <= self._t_prev:
            msg = f"frame time {t1} µs is not after the previous frame's {self._t_prev} µs"
            raise ValueError(msg)
        l_new = self._log(f)
        if self._t_prev is None:
            self._l_prev[:] = l_new
            self._l_ref[:] = l_new
            self._t_prev = t1
            return np.empty(0, dtype=EVENT_DTYPE)
        p = self.params
        t, idx, pol = kernel.delta_frame(
            l_new, self._t_prev, t1, self._l_prev, self._l_ref, self._last_t,
            float(p.on_threshold), float(p.off_threshold), int(p.refractory_us),
        )  # fmt: skip
        self._t_prev = t1
        return events_from_arrays(t, idx, pol, self.width)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays (``t_prev`` is -1 with ``initialised`` 0 before the first frame)."""
        return {
            "l_prev": self._l_prev.copy(),
            "l_ref": self._l_ref.copy(),
            "last_t": self._last_t.copy(),
            "t_prev": np.array(-1 if self._t_prev is None else self._t_prev, dtype=np.int64),
            "initialised": np.array(int(self._t_prev is not None), dtype=np.int64),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict`` taken from an encoder of the same size."""
        shape = (self.height, self.width)
        for name, dtype in (("l_prev", np.float64), ("l_ref", np.float64), ("last_t", np.int64)):
            a = np.asarray(state.get(name))
            if a.shape != shape or a.dtype != dtype:
                msg = f"state {name!r} has shape {a.shape} dtype {a.dtype}, expected {shape} {np.dtype(dtype)}"
                raise ValueError(msg)
        self._l_prev = np.array(state["l_prev"], dtype=np.float64)
        self._l_ref = np.array(state["l_ref"], dtype=np.float64)
        self._last_t = np.array(state["last_t"], dtype=np.int64)
        self._t_prev = int(state["t_prev"]) if int(state["initialised"]) else None
