"""Events → network input: crop, noise filters, downsampling and polarity channels.

``EventTransform`` maps camera events (sensor geometry) to the network's input geometry, one event at a
time and in order, in this sequence:

1. crop: events outside ``(x0, y0, crop_w, crop_h)`` are dropped;
2. background-activity filter (``ba_window_us > 0``), in the cropped sensor geometry, polarity-blind: an
   event is kept only if one of its 8 neighbours had an event at most ``ba_window_us`` before it;
   every event reaching the filter stamps its own pixel, kept or not;
3. downsample: ``out_x = (x - x0) * out_w // crop_w`` (same for ``y``), exact integer arithmetic, so
   any output size works (integer or fractional factors);
4. channels: ``channels=2`` → channel = polarity; ``channels=1`` → both polarities merged into channel 0
   (``merge_polarities=True``) or ON only (OFF events dropped);
5. refractory filter (``refractory_us > 0``) per output pixel and channel: an event less than
   ``refractory_us`` after the last *emitted* event there is dropped.

The output is ``EVENT_DTYPE`` with ``x``, ``y`` in the output geometry and ``p`` = channel. The filter
maps are state, kept across calls, so the output does not depend on how the input is split into
batches. The filters are our own small kernels rather than dv-processing's
(``dv.noise.BackgroundActivityNoiseFilter``, ``dv.RefractoryPeriodFilter``): those work on their own
event stores in the sensor geometry, and ours must run after the crop, keep their state in arrays we can
checkpoint, and be exactly specified for the batch-invariance tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nodes.encoder.kernels import NO_EVENT_T
from nodes.encoder.kernels import events as kernel
from pipeline.events import EVENT_DTYPE


@dataclass(frozen=True, kw_only=True)
class TransformParams:
    """Geometry and filters of ``EventTransform``."""

    #: Sensor width and height in pixels (e.g. 346 x 260 for a DAVIS346, 34 x 34 for N-MNIST).
    in_width: int
    in_height: int
    #: Network input size in pixels (<= the crop size: this stage only downsamples).
    out_width: int
    out_height: int
    #: Crop window ``(x0, y0, w, h)`` in sensor pixels; ``None`` = the whole sensor.
    crop: tuple[int, int, int, int] | None = None
    #: 2: channel = polarity (0 OFF, 1 ON); 1: a single channel (see ``merge_polarities``).
    channels: int = 2
    #: With ``channels=1``: True = ON and OFF both go to channel 0, False = ON only.
    merge_polarities: bool = True
    #: Background-activity filter window in µs (>= 0, 0 = off); e.g. 2000-10000 for a DVS.
    ba_window_us: int = 0
    #: Refractory period per output pixel and channel in µs (>= 0, 0 = off).
    refractory_us: int = 0

    def __post_init__(self) -> None:
        for name in ("in_width", "in_height", "out_width", "out_height"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 < v <= 65535:
                msg = f"TransformParams.{name} must be an int in 1..65535, got {v!r}"
                raise ValueError(msg)
        x0, y0, w, h = self.crop_window
        if x0 < 0 or y0 < 0 or w <= 0 or h <= 0 or x0 + w > self.in_width or y0 + h > self.in_height:
            msg = (
                f"TransformParams.crop {self.crop!r} is not a non-empty window inside the "
                f"{self.in_width}x{self.in_height} sensor"
            )
            raise ValueError(msg)
        if self.out_width > w or self.out_height > h:
            msg = (
                f"output size {self.out_width}x{self.out_height} is larger than the crop {w}x{h}; "
                "EventTransform only downsamples"
            )
            raise ValueError(msg)
        if self.channels not in (1, 2):
            msg = f"TransformParams.channels must be 1 or 2, got {self.channels!r}"
            raise ValueError(msg)
        for name in ("ba_window_us", "refractory_us"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                msg = f"TransformParams.{name} must be an int >= 0, got {v!r}"
                raise ValueError(msg)

    @property
    def crop_window(self) -> tuple[int, int, int, int]:
        """``(x0, y0, w, h)``, the whole sensor when ``crop`` is None."""
        if self.crop is None:
            return (0, 0, self.in_width, self.in_height)
        if len(self.crop) != 4 or not all(isinstance(v, int) for v in self.crop):
            msg = f"TransformParams.crop must be 4 ints (x0, y0, w, h), got {self.crop!r}"
            raise ValueError(msg)
        return tuple(self.crop)  # type: ignore[return-value]


_COUNTER_NAMES = {
    kernel.C_IN: "in",
    kernel.C_CROPPED: "cropped",
    kernel.C_POLARITY: "polarity",
    kernel.C_BA: "background_activity",
    kernel.C_REFRACTORY: "refractory",
    kernel.C_OUT: "out",
}


class EventTransform:
    """Stateful crop / filter / downsample / channel mapping of event batches (see the module doc)."""

    def __init__(self, params: TransformParams) -> None:
        self.params = params
        _, _, w, h = params.crop_window
        self._ba_last = np.full((h, w), NO_EVENT_T, dtype=np.int64)
        self._refr_last = np.full((params.channels, params.out_height, params.out_width), NO_EVENT_T, dtype=np.int64)
        self._counters = np.zeros(kernel.N_COUNTERS, dtype=np.int64)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Transform one batch (``EVENT_DTYPE``, in time order) and return the kept events."""
        if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
            got = getattr(events, "dtype", type(events))
            msg = f"events must be an EVENT_DTYPE array, got {got}"
            raise ValueError(msg)
        if events.ndim != 1:
            msg = f"events must be 1-d, got shape {events.shape}"
            raise ValueError(msg)
        pr = self.params
        if events.size and (events["x"].max() >= pr.in_width or events["y"].max() >= pr.in_height):
            msg = (
                f"event coordinates up to x={events['x'].max()} y={events['y'].max()} do not fit the "
                f"{pr.in_width}x{pr.in_height} sensor of TransformParams"
            )
            raise ValueError(msg)
        n_in = events.shape[0]
        out_t = np.empty(n_in, dtype=np.int64)
        out_x = np.empty(n_in, dtype=np.int64)
        out_y = np.empty(n_in, dtype=np.int64)
        out_c = np.empty(n_in, dtype=np.int64)
        x0, y0, w, h = pr.crop_window
        geometry = (x0, y0, w, h, pr.out_width, pr.out_height, pr.channels, pr.merge_polarities,
                    pr.ba_window_us, pr.refractory_us)  # fmt: skip
        n = kernel.transform_events(
            (
                np.ascontiguousarray(events["t"]),
                np.ascontiguousarray(events["x"]),
                np.ascontiguousarray(events["y"]),
                np.ascontiguousarray(events["p"]),
            ),
            geometry,
            (self._ba_last, self._refr_last, self._counters),
            (out_t, out_x, out_y, out_c),
        )
        out = np.zeros(n, dtype=EVENT_DTYPE)  # zeros: padding bytes deterministic on the wire
        out["t"] = out_t[:n]
        out["x"] = out_x[:n]
        out["y"] = out_y[:n]
        out["p"] = out_c[:n]
        return out

    def counters(self) -> dict[str, int]:
        """Events seen, emitted and removed per reason since creation (or the last restored state)."""
        return {name: int(self._counters[i]) for i, name in _COUNTER_NAMES.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the filter maps and counters."""
        return {
            "ba_last": self._ba_last.copy(),
            "refr_last": self._refr_last.copy(),
            "counters": self._counters.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict`` of a transform with the same geometry."""
        for name in ("ba_last", "refr_last", "counters"):
            mine = getattr(self, f"_{name}")
            a = np.asarray(state.get(name))
            if a.shape != mine.shape or a.dtype != np.int64:
                msg = f"state {name!r} has shape {a.shape} dtype {a.dtype}, expected {mine.shape} int64"
                raise ValueError(msg)
        self._ba_last = np.array(state["ba_last"], dtype=np.int64)
        self._refr_last = np.array(state["refr_last"], dtype=np.int64)
        self._counters = np.array(state["counters"], dtype=np.int64)
