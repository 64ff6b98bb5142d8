"""Frames from a video file or a webcam (OpenCV), turned into address events by the delta encoder.

``VideoSource`` reads frames with ``cv2.VideoCapture`` in a worker thread, converts them to grayscale,
optionally resizes them (``cv2.INTER_AREA``), and feeds them to ``nodes.encoder.delta.DeltaEncoder``,
an idealised DVS pixel array: each later frame yields the events of the interval since the previous one,
on a sensor of the (resized) frame size. The first frame only sets the reference levels.

Frame times: for a file, frame ``i`` is at ``round(i * 1e6 / fps)`` µs, with ``fps`` from the file (or
``fps`` in the config when the file does not say); with ``realtime`` the frames are also paced at that
rate. For a webcam (``device >= 0``) a frame's time is the wall clock (Unix µs) when it was read, made
strictly increasing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from nodes.encoder.delta import DeltaEncoder, DeltaParams
from pipeline.config import data_path
from pipeline.errors import DeviceError
from pipeline.message import Message, events_message
from pipeline.node import NodeContext, Source


@dataclass(frozen=True, kw_only=True)
class VideoParams:
    """Parameters of ``VideoSource``: a video file (``path``) or a webcam (``device``)."""

    #: Video file (anything OpenCV's FFmpeg backend opens); relative paths resolve like recordings.
    path: str = ""
    #: Webcam index (``/dev/videoN``) when >= 0; then ``path`` must be empty.
    device: int = -1
    #: Resize frames to this size in pixels before encoding (0, 0 = keep the frame size).
    width: int = 0
    height: int = 0
    #: Frames per second of a file whose header does not say (0 = refuse such a file).
    fps: float = 0.0
    #: Pace a file's frames at its frame rate (as a live source); off: as fast as the graph takes them.
    realtime: bool = False
    #: Stop after this many frames (0 = at the end of the file; never for a webcam).
    max_frames: int = 0
    #: The delta encoder's thresholds and refractory period (``nodes.encoder.delta.DeltaParams``).
    encoder: DeltaParams = field(default_factory=DeltaParams)

    def __post_init__(self) -> None:
        if bool(self.path) == (self.device >= 0):
            msg = f"set exactly one of path (a file) or device >= 0 (a webcam), got {self.path!r}, {self.device}"
            raise ValueError(msg)
        if (self.width == 0) != (self.height == 0) or self.width < 0 or self.height < 0:
            msg = f"width and height must both be 0 (keep) or both > 0, got {self.width}x{self.height}"
            raise ValueError(msg)
        if self.width > 65535 or self.height > 65535:
            msg = f"frame size {self.width}x{self.height} does not fit uint16 event coordinates"
            raise ValueError(msg)
        if self.fps < 0 or not math.isfinite(self.fps):
            msg = f"fps must be a finite number >= 0, got {self.fps}"
            raise ValueError(msg)
        if self.max_frames < 0:
            msg = f"max_frames must be >= 0, got {self.max_frames}"
            raise ValueError(msg)


def to_gray(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """A uint8 grayscale ``(height, width)`` frame from an OpenCV frame (BGR, BGRA or gray), resized to
    ``size = (width, height)`` when given."""
    import cv2

    if frame.ndim == 3 and frame.shape[2] == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    elif frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim != 2:
        msg = f"unsupported frame shape {frame.shape}"
        raise ValueError(msg)
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame)
    if size is not None and (frame.shape[1], frame.shape[0]) != size:
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


class VideoSource(Source):
    """Events from video frames through the delta encoder (see the module doc)."""

    Config = VideoParams
    config: VideoParams

    def __init__(self, name: str, config: VideoParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self._cap: Any = None
        self._what = f"webcam {config.device}" if config.device >= 0 else str(config.path)
        self._fps = 0.0
        self._frames = 0
        self._events = 0
        self._encoder: DeltaEncoder | None = None

    def _open(self) -> Any:
        import cv2

        c = self.config
        if c.device >= 0:
            cap = cv2.VideoCapture(c.device)
            if not cap.isOpened():
                msg = (
                    f"cannot open webcam {c.device} (/dev/video{c.device}): is it connected and readable by "
                    "your user (group 'video')?"
                )
                raise DeviceError(msg)
            return cap
        p: Path = data_path(c.path)
        self._what = str(p)
        if not p.is_file():
            msg = f"video file not found: {p}"
            raise DeviceError(msg)
        cap = cv2.VideoCapture(str(p))
        if not cap.isOpened():
            msg = f"cannot open video file {p}: OpenCV has no decoder for it, or it is corrupt"
            raise DeviceError(msg)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if math.isfinite(fps) and fps > 0 else c.fps
        if self._fps <= 0:
            cap.release()
            msg = f"video file {p} does not state its frame rate; set fps in the config"
            raise DeviceError(msg)
        return cap

    @override
    async def start(self) -> None:
        self._cap = await asyncio.to_thread(self._open)

    def _read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        c = self.config
        return to_gray(frame, (c.width, c.height) if c.width else None)

    @override
    async def produce(self) -> AsyncIterator[Message]:
        if self._cap is None:
            msg = f"{self.name}: {self._what} not opened (start() was not called)"
            raise DeviceError(msg)
        c = self.config
        webcam = c.device >= 0
        t0 = time.perf_counter()
        last_t = -1
        while not c.max_frames or self._frames < c.max_frames:
            if c.realtime and not webcam:
                ahead = self._frames / self._fps - (time.perf_counter() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            try:
                frame = await asyncio.to_thread(self._read)
            except ValueError as exc:
                msg = f"{self._what}: frame {self._frames}: {exc}"
                raise DeviceError(msg) from None
            if frame is None:
                if webcam:
                    msg = f"webcam {c.device} stopped delivering frames (disconnected?)"
                    raise DeviceError(msg)
                return
            t_us = max(last_t + 1, time.time_ns() // 1000) if webcam else round(self._frames * 1000000.0 / self._fps)
            last_t = t_us
            if self._encoder is None:
                self._encoder = DeltaEncoder(frame.shape[1], frame.shape[0], c.encoder)
            events = self._encoder.encode(frame, t_us)
            self._frames += 1
            if events.shape[0]:
                self._events += int(events.shape[0])
                yield events_message(events, self._encoder.width, self._encoder.height)
            else:
                await asyncio.sleep(0)

    @override
    def results(self) -> dict[str, Any]:
        return {"video_frames": self._frames, "video_events": self._events, "video_fps": self._fps}

    @override
    async def stop(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
