"""Live iniVation cameras (DVS128, DAVIS, DVXplorer) through dv-processing 2.x.

``CameraSource`` opens a camera found by ``dv.io.camera.discover()`` (by name or serial, or the first one),
reads its event batches in a worker thread and emits them as ``EVENT_DTYPE`` batches. An optional region
of interest keeps only the events inside a window and shifts them so the window's top-left corner becomes
``(0, 0)``; the emitted sensor size is then the window's size.

Failure modes, each a ``DeviceError`` with a message that says what to check:

* no camera connected (or not accessible: udev rules, permissions);
* the requested camera is not among the connected ones;
* the camera vanishes while streaming (cable pulled): the stream ends, the runner records the error.

The helpers ``dv_events``, ``crop_roi`` and ``poll_events`` are shared with ``devices.network``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.errors import DeviceError
from pipeline.events import EVENT_DTYPE
from pipeline.message import Message, events_message
from pipeline.node import NodeContext, Source
from pipeline.shedding import LagShedder

log = logging.getLogger(__name__)

#: What to check when no camera shows up; part of every "not found" message.
NO_CAMERA_HELP = (
    "check that the camera is plugged in (try another USB cable or port), that the iniVation udev rules "
    "are installed so that your user may open it (package 'dv-runtime' / 'dv-processing' udev rules, see "
    "https://docs.inivation.com, then unplug and replug), and that no other program (DV GUI) holds it"
)
#: The same for the camera source, which can point at the listing command.
_SOURCE_HELP = NO_CAMERA_HELP + "; 'spikestream cameras' lists what is visible"


def dv_events(store: Any) -> np.ndarray:
    """An ``EVENT_DTYPE`` batch from a ``dv.EventStore`` (or anything with a compatible ``numpy()``).

    dv-processing's records are ``(timestamp i8, x i2, y i2, polarity i1)``; ``polarity`` 1 = ON, which
    is our convention too."""
    a = store.numpy()
    out = np.zeros(a.shape[0], dtype=EVENT_DTYPE)  # zeros: padding bytes deterministic on the wire
    out["t"] = a["timestamp"]
    out["x"] = a["x"]
    out["y"] = a["y"]
    out["p"] = a["polarity"]
    return out


def check_roi(roi: tuple[int, int, int, int], width: int, height: int) -> None:
    """Raise ``ValueError`` unless ``roi = (x, y, w, h)`` is a non-empty window inside a width x height sensor."""
    x, y, w, h = roi
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or y + h > height:
        msg = (
            f"region of interest (x={x}, y={y}, width={w}, height={h}) is not a non-empty window inside the "
            f"{width}x{height} sensor"
        )
        raise ValueError(msg)


def crop_roi(events: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Keep the events inside ``roi = (x, y, w, h)`` and shift them by ``(-x, -y)``.

    An event at ``(ex, ey)`` is kept when ``x <= ex < x + w`` and ``y <= ey < y + h``; it comes out at
    ``(ex - x, ey - y)``, so the output lives on a ``w`` x ``h`` sensor. Order and timestamps are kept."""
    if events.dtype != EVENT_DTYPE:
        msg = f"events must have dtype EVENT_DTYPE, got {events.dtype}"
        raise ValueError(msg)
    x, y, w, h = roi
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        msg = f"region of interest must have x, y >= 0 and width, height > 0, got {roi}"
        raise ValueError(msg)
    ex = events["x"].astype(np.int64)
    ey = events["y"].astype(np.int64)
    keep = (ex >= x) & (ex < x + w) & (ey >= y) & (ey < y + h)
    out = events[keep]  # boolean indexing copies
    out["x"] -= np.uint16(x)
    out["y"] -= np.uint16(y)
    return out


def poll_events(reader: Any, wait_s: float) -> Any:
    """Blocking: the next event batch of a dv-processing input, waiting up to ``wait_s`` for one.

    dv-processing's ``getNextEventBatch`` does not block: it returns ``None`` when nothing is ready, and
    the input's ``isRunning()`` turns false once the device or the server is gone. This polls it every
    0.5 ms; run it in a thread (``asyncio.to_thread``) so the event loop never waits on it.

    Returns ``("events", store)``, ``("idle", None)`` when nothing came within ``wait_s``, or
    ``("gone", None)`` when the input stopped running.
    """
    deadline = time.monotonic() + wait_s
    while True:
        store = reader.getNextEventBatch()
        if store is not None:
            return ("events", store)
        if not reader.isRunning():
            return ("gone", None)
        if time.monotonic() >= deadline:
            return ("idle", None)
        time.sleep(0.0005)


@dataclass(frozen=True, kw_only=True)
class CameraParams:
    """Parameters of ``CameraSource``."""

    #: Which camera: its name as dv-processing prints it (e.g. ``"DVXplorer_DXA00080"``) or just its serial
    #: number (``"DXA00080"``); empty = the first camera found.
    camera: str = ""
    #: Region of interest ``[x, y, width, height]`` in sensor pixels; events outside are dropped and the
    #: rest shifted so that ``(x, y)`` becomes ``(0, 0)``. Empty = the whole sensor.
    roi: tuple[int, ...] = ()
    #: How long one worker-thread read waits for data before handing control back, in seconds (> 0).
    poll_s: float = 0.01
    #: Events more than this many µs older than the camera's present when they could leave are shed,
    #: whole time slices, oldest first, and counted (>= 1): the graph's answers stay this fresh when it
    #: cannot keep up (``nodes.sources.shedding``).
    max_lag_us: int = 50_000

    def __post_init__(self) -> None:
        if self.roi and len(self.roi) != 4:
            msg = f"roi must be [x, y, width, height], got {list(self.roi)}"
            raise ValueError(msg)
        if self.roi:
            x, y, w, h = self.roi
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                msg = f"roi must have x, y >= 0 and width, height > 0, got {list(self.roi)}"
                raise ValueError(msg)
        if not self.poll_s > 0:
            msg = f"poll_s must be > 0 s, got {self.poll_s}"
            raise ValueError(msg)
        if self.max_lag_us < 1:
            msg = f"max_lag_us must be >= 1 µs, got {self.max_lag_us}"
            raise ValueError(msg)


def descriptor_name(desc: Any) -> str:
    """``MODEL_SERIAL`` for a ``dv.io.camera`` device descriptor (e.g. ``DVXPLORER_DXA00080``)."""
    model = getattr(desc.cameraModel, "name", str(desc.cameraModel))
    return f"{model}_{desc.serialNumber}"


def discover() -> list[Any]:
    """The connected cameras' descriptors (``dv.io.camera.discover()``); a failing USB stack is a ``DeviceError``."""
    import dv_processing as dv

    try:
        return list(dv.io.camera.discover())
    except RuntimeError as exc:
        msg = f"cannot list USB cameras: {exc}; {_SOURCE_HELP}"
        raise DeviceError(msg) from None


def pick_camera(descriptors: list[Any], wanted: str) -> Any:
    """The descriptor matching ``wanted`` (a name like ``DVXplorer_DXA00080`` or a serial), or the first."""
    if not descriptors:
        msg = f"no iniVation camera found; {_SOURCE_HELP}"
        raise DeviceError(msg)
    if not wanted:
        return descriptors[0]
    serial = wanted.rsplit("_", 1)[-1]
    for d in descriptors:
        if d.serialNumber in (wanted, serial) or descriptor_name(d).lower() == wanted.lower():
            return d
    seen = ", ".join(descriptor_name(d) for d in descriptors)
    msg = f"camera {wanted!r} not found; connected: {seen}. Run 'spikestream cameras' to list them"
    raise DeviceError(msg)


class CameraSource(Source):
    """Events from a live iniVation camera (see the module doc)."""

    Config = CameraParams
    config: CameraParams

    def __init__(self, name: str, config: CameraParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self._camera: Any = None
        self._camera_name = config.camera or "camera"
        self._width = 0
        self._height = 0
        self._roi: tuple[int, int, int, int] | None = None
        self._events = 0
        self._batches = 0
        self._shedder = LagShedder(name, config.max_lag_us, self.log)
        #: the smallest (wall clock - newest event) seen: the camera clock's offset plus the fastest delivery
        self._clock_offset_us: int | None = None

    def _open(self) -> Any:
        import dv_processing as dv

        desc = pick_camera(discover(), self.config.camera)
        try:
            return dv.io.camera.open(desc)
        except RuntimeError as exc:
            msg = f"camera {descriptor_name(desc)} was found but cannot be opened: {exc}; {_SOURCE_HELP}"
            raise DeviceError(msg) from None

    @override
    async def start(self) -> None:
        self._camera = await asyncio.to_thread(self._open)
        self._camera_name = str(self._camera.getCameraName())
        res = self._camera.getEventResolution()
        if res is None:
            msg = f"camera {self._camera_name} has no event stream"
            raise DeviceError(msg)
        self._width, self._height = int(res[0]), int(res[1])
        if self.config.roi:
            roi = (int(self.config.roi[0]), int(self.config.roi[1]), int(self.config.roi[2]), int(self.config.roi[3]))
            try:
                check_roi(roi, self._width, self._height)
            except ValueError as exc:
                msg = f"camera {self._camera_name}: {exc}"
                raise DeviceError(msg) from None
            self._roi = roi
        self.log.info(
            "%s: streaming from %s (%dx%d%s)",
            self.name,
            self._camera_name,
            self._width,
            self._height,
            f", region of interest {self._roi}" if self._roi else "",
        )

    @property
    def sensor_size(self) -> tuple[int, int]:
        """``(width, height)`` of the emitted events (the region of interest's size when one is set)."""
        if self._roi is not None:
            return self._roi[2], self._roi[3]
        return self._width, self._height

    @override
    async def produce(self) -> AsyncIterator[Message]:
        if self._camera is None:
            msg = f"{self.name}: camera not opened (start() was not called)"
            raise DeviceError(msg)
        width, height = self.sensor_size
        while True:
            try:
                kind, store = await asyncio.to_thread(poll_events, self._camera, self.config.poll_s)
            except RuntimeError as exc:
                msg = f"camera {self._camera_name} failed while streaming: {exc}"
                raise DeviceError(msg) from None
            if kind == "gone":
                msg = (
                    f"camera {self._camera_name} stopped delivering data (disconnected?) after "
                    f"{self._events:,} events; {_SOURCE_HELP}"
                )
                raise DeviceError(msg)
            if kind == "idle":
                continue
            events = dv_events(store)
            if self._roi is not None:
                events = crop_roi(events, self._roi)
            if events.shape[0]:
                self._events += int(events.shape[0])
                self._batches += 1
                events = self._shed(events)
            if events.shape[0]:
                yield events_message(events, width, height)

    def _shed(self, events: np.ndarray) -> np.ndarray:
        """``events`` less what is older than ``max_lag_us`` behind the camera's present, which is the
        wall clock less the smallest delivery delay seen (so camera and host clocks need not agree)."""
        wall_us = time.time_ns() // 1000
        offset = wall_us - int(events["t"][-1])
        if self._clock_offset_us is None or offset < self._clock_offset_us:
            self._clock_offset_us = offset
        return self._shedder.shed(events, wall_us - self._clock_offset_us, time.monotonic())

    @override
    def results(self) -> dict[str, Any]:
        return {
            "camera": self._camera_name,
            "camera_events": self._events,
            "camera_batches": self._batches,
        } | self._shedder.results()

    @override
    async def stop(self) -> None:
        self._shedder.finish()
        self._camera = None  # dv-processing closes the device when the object is released
