"""``render``: a recording's events drawn as a video, with the predictions over them when there are any.

The parts: events come from an event file (``recordings.files``) or a message log; ``frames`` bins them;
``kernel.paint`` colours each frame; ``overlay`` draws the time, rate and prediction bars; ``writer`` keeps
the frames as MP4 or GIF. A recording that turns out corrupt midway stops the render with the reader's
error (file and byte offset) and leaves no half-written video behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RecordingError
from pipeline.message import EVENTS
from pipeline.progress import Progress
from recordings.files import open_recording
from recordings.messages import TruncatedLogError, is_message_log, read_messages
from recordings.video.frames import Timing, frames, warm_up
from recordings.video.kernel import paint
from recordings.video.overlay import OFF, ON, Layout, background, draw_caption, draw_predictions, draw_strip
from recordings.video.predictions import PredictionTrack, from_message_log
from recordings.video.writer import open_video

#: Events per batch read from the recording.
BATCH = 1 << 16


@dataclass(frozen=True, kw_only=True)
class RenderParams:
    """How a recording becomes a video."""

    speed: float = 1.0  #: recording seconds per video second (0.1: ten times slower than real time)
    fps: float = 30.0  #: video frames per second
    window_ms: float = 0.0  #: recording time each frame shows, ms (0: one frame's step, speed / fps)
    start_s: float = 0.0  #: where to start, s after the first event
    duration_s: float = 0.0  #: how much of the recording, s (0: to its last event)
    scale: int = 0  #: screen pixels per sensor pixel (0: the smallest that makes the video 320 px wide)

    def __post_init__(self) -> None:
        checks = {
            "speed": self.speed > 0,
            "fps": 0 < self.fps <= 1000,
            "window_ms": self.window_ms >= 0,
            "start_s": self.start_s >= 0,
            "duration_s": self.duration_s >= 0,
            "scale": 0 <= self.scale <= 64,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            msg = (
                f"{', '.join(bad)} out of range: need speed > 0, 0 < fps <= 1000, window_ms >= 0, start_s >= 0, "
                f"duration_s >= 0, 0 <= scale <= 64; got {self}"
            )
            raise ValueError(msg)

    @property
    def step_us(self) -> float:
        """Recording time per frame, µs."""
        return 1e6 * self.speed / self.fps


@dataclass(kw_only=True)
class Source:
    """The events of a recording, and what it says about itself."""

    path: Path
    format: str
    width: int
    height: int
    batches: Iterator[np.ndarray]
    predictions: PredictionTrack | None = None
    truncated_at: int | None = None


def _log_events(path: Path, source: Source) -> Iterator[np.ndarray]:
    try:
        for msg in read_messages(path):
            if msg.kind == EVENTS and msg.data is not None and msg.count:
                yield msg.data
    except TruncatedLogError as exc:
        source.truncated_at = exc.offset


def open_source(path: str | Path) -> Source:
    """The events of an event file or of a message log (with its predictions, if it holds any). A sensor
    size the file does not state is the extent of its events (one extra pass over them)."""
    path = Path(path)
    if is_message_log(path):
        width = height = 0
        try:
            for message in read_messages(path):
                if message.kind == EVENTS and message.data is not None:
                    width = max(width, message.width or 0, int(message.data["x"].max(initial=0)) + 1)
                    height = max(height, message.height or 0, int(message.data["y"].max(initial=0)) + 1)
        except TruncatedLogError:
            pass
        if not width:
            msg = f"{path}: a message log without events (nothing to draw)"
            raise RecordingError(msg)
        source = Source(path=path, format="message log", width=width, height=height, batches=iter(()))
        source.batches = _log_events(path, source)
        source.predictions = from_message_log(path)
        return source
    rec = open_recording(path)
    width, height = rec.width or 0, rec.height or 0
    if not width or not height:
        for batch in rec.batches(BATCH):
            width = max(width, int(batch["x"].max(initial=0)) + 1)
            height = max(height, int(batch["y"].max(initial=0)) + 1)
    return Source(path=path, format=rec.format, width=width, height=height, batches=rec.batches(BATCH))


def auto_scale(width: int) -> int:
    """The smallest whole scale that makes a sensor ``width`` pixels wide at least 320 px on screen."""
    return max(1, math.ceil(320 / max(width, 1)))


def _until(batches: Iterator[np.ndarray], end_us: float | None) -> Iterator[np.ndarray]:
    """The batches up to the first that starts at or after ``end_us``."""
    for batch in batches:
        if end_us is not None and batch.size and int(batch["t"][0]) >= end_us:
            return
        yield batch


def render(
    source: Source,
    out: str | Path,
    params: RenderParams,
    *,
    predictions: PredictionTrack | None = None,
    caption: str | None = None,
    truth: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Draw ``source`` into the video file ``out`` (``.mp4``/``.gif``); returns what was written. ``truth``
    is the class the whole recording shows, where the predictions do not say. A failure midway removes the
    half-written file and raises the error."""
    batches = iter(source.batches)
    first = next((b for b in batches if b.size), None)
    if first is None:
        msg = f"{source.path}: holds no events (nothing to draw)"
        raise RecordingError(msg)
    track = predictions if predictions is not None else source.predictions
    scale = params.scale or auto_scale(source.width)
    layout = Layout(
        sensor_width=source.width,
        sensor_height=source.height,
        scale=scale,
        classes=track.classes if track is not None else 0,
        caption=caption is not None,
    )
    step = params.step_us
    t0 = int(first["t"][0]) + round(params.start_s * 1e6)
    n_frames = math.ceil(params.duration_s * 1e6 / step - 1e-9) if params.duration_s else None
    timing = Timing(t0=t0, step=step, window=round(params.window_ms * 1e3), n_frames=n_frames)
    end_us = t0 + n_frames * step if n_frames is not None else None
    window_s = params.window_ms / 1e3
    decimals = min(max(math.ceil(-math.log10(step / 1e6)), 2), 6)
    base = background(layout)
    canvas = base.copy()
    oy, ox = layout.origin
    video = open_video(out, params.fps, layout.width, layout.height)
    warm_up()
    started = time.perf_counter()
    written = events = 0
    try:
        for frame in frames(_until(_chain(first, batches), end_us), source.width, source.height, timing):
            np.copyto(canvas, base)
            paint(frame.counts, scale, canvas, oy, ox, ON, OFF)
            t_s = (frame.t_end - t0) / 1e6 + params.start_s
            draw_strip(canvas, t_s, decimals, params.speed, frame.events / (window_s or step / 1e6))
            if track is not None:
                shown = track.at(frame.t_end)
                if shown.truth < 0 and truth is not None:
                    shown = replace(shown, truth=truth)
                draw_predictions(canvas, layout, shown)
            if caption is not None:
                draw_caption(canvas, caption)
            video.write(canvas)
            written += 1
            events += frame.events
            if progress is not None:
                progress.extra = f", frame {written:,}" + (f"/{n_frames:,}" if n_frames else "")
                progress.update(done=1, events=frame.events)
        if not written:
            msg = f"{source.path}: no events from --start {params.start_s:g} s on (nothing to draw)"
            raise RecordingError(msg)
        video.close()
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise
    elapsed = time.perf_counter() - started
    return {
        "path": str(out),
        "frames": written,
        "video_s": written / params.fps,
        "width": layout.width,
        "height": layout.height,
        "scale": scale,
        "events_drawn": events,
        "predictions": len(track) if track is not None else 0,
        "render_s": elapsed,
        "frames_per_s": written / elapsed if elapsed > 0 else float("inf"),
        "truncated_at": source.truncated_at,
    }


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
