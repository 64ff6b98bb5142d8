"""A simulated live camera: replays a recording in real time, or makes a synthetic stream at a set rate.

``SimulatedCamera`` behaves like a camera that keeps running whatever the graph does. Stream time is
tied to the wall clock: ``stream_now = t_origin + elapsed_wall * speed``. Every ``slice_us`` of wall
time it emits the events that have come due since the previous emission (a short time slice, as a camera
commits a packet every millisecond or so).

Each emission leaves as messages of at most ``slice_us`` (of wall time), however late it is: a graph that
bounds its queues by message count then also bounds them in time.

When the consumer is slow (the graph's back-pressure makes the send wait), the camera does not fall
behind: at the next emission, every event born more than ``max_lag_us`` of wall time ago is dropped (its wall
time has passed), whole time slices, oldest first; they are counted, and a log line says when dropping
starts and when it stops. So the lag of what is emitted stays within ``max_lag_us`` (plus one emission's
send time), and ``events_emitted + events_dropped`` is everything the camera produced.

Modes:

* ``path``: a recording (any format ``recordings.open_recording`` reads; relative paths resolve with
  ``pipeline.config.data_path``), played in laps by ``nodes.sources.paced_file.PacedFile``, the file
  playback the ``replay`` source uses too. Timestamps are moved to the wall clock, as a live camera
  stamps its events: the first event gets the Unix time in µs when the stream starts, the others keep
  their distance to it divided by ``speed`` (so labels taught live, stamped with the wall clock, line
  up with the replayed scene, and a recording played faster looks like a faster scene; the ``replay``
  source keeps a file's own timestamps). With ``loop``, lap ``k`` is shifted by
  ``k * (t_last - t_first + slice_us)`` of stream time so that they keep increasing.
* ``rate`` (no ``path``): ``rate`` events per second of stream time, event ``k`` at
  ``k * 1e6 / rate`` µs of stream time after the start, stamped with the wall clock like a replay, so
  that an event's timestamp is its wall-clock birth time at any ``speed`` (latency benchmarks use that).
  Pixels and polarities are a fixed hash of ``k``: deterministic, and dropping does not change which
  events the others are.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from nodes.sources.paced_file import PacedFile
from nodes.sources.pacing import time_slices
from pipeline.config import data_path
from pipeline.errors import DeviceError, RecordingError
from pipeline.events import EVENT_DTYPE, copy_records
from pipeline.message import Message, events_message
from pipeline.node import NodeContext, Source
from pipeline.shedding import LagShedder


@dataclass(frozen=True, kw_only=True)
class SimulatedParams:
    """Parameters of ``SimulatedCamera``. Set ``path`` (replay) or ``rate`` (synthetic), not both."""

    #: Recording to replay (relative: against the current folder, then ``$SPIKESTREAM_DATA``).
    path: str = ""
    #: Synthetic mode: events per second of stream time (> 0) when ``path`` is empty.
    rate: float = 0.0
    #: Synthetic mode: sensor size in pixels (1..65535); a replay uses the recording's size.
    width: int = 128
    height: int = 128
    #: Stream seconds per wall second (> 0): 2.0 replays twice as fast as recorded.
    speed: float = 1.0
    #: Replay: start over at the end of the recording (timestamps keep increasing, see the module doc).
    loop: bool = False
    #: Wall time between emissions in µs (>= 1): the size of the time slices a live camera commits.
    slice_us: int = 1000
    #: Events born more than this many µs (wall time) before an emission are shed, oldest first (>= 1).
    max_lag_us: int = 50_000
    #: Stop after this many seconds of stream time (>= 0; 0 = at the end of the recording, never for
    #: ``rate`` mode or ``loop``).
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if bool(self.path) == (self.rate > 0):
            msg = f"set exactly one of path (replay) or rate > 0 (synthetic); got {self.path!r}, {self.rate}"
            raise ValueError(msg)
        if self.rate < 0 or not math.isfinite(self.rate):
            msg = f"rate must be a finite number of events/s >= 0, got {self.rate}"
            raise ValueError(msg)
        if not (1 <= self.width <= 65535 and 1 <= self.height <= 65535):
            msg = f"width/height must be in 1..65535, got {self.width}x{self.height}"
            raise ValueError(msg)
        if not (self.speed > 0 and math.isfinite(self.speed)):
            msg = f"speed must be a finite number > 0, got {self.speed}"
            raise ValueError(msg)
        if self.slice_us < 1 or self.max_lag_us < 1:
            msg = f"slice_us and max_lag_us must be >= 1 µs, got {self.slice_us}, {self.max_lag_us}"
            raise ValueError(msg)
        if self.duration_s < 0:
            msg = f"duration_s must be >= 0, got {self.duration_s}"
            raise ValueError(msg)


def synthetic_events(k0: int, k1: int, t_origin: int, rate: float, width: int, height: int) -> np.ndarray:
    """Events ``k0 .. k1-1`` of the synthetic stream (see the module doc)."""
    k = np.arange(k0, k1, dtype=np.int64)
    out = np.zeros(k.shape[0], dtype=EVENT_DTYPE)
    out["t"] = t_origin + np.floor(k * (1e6 / rate)).astype(np.int64)
    h = (k.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)  # a fixed mixing of k
    out["x"] = h % np.uint64(width)
    out["y"] = (h >> np.uint64(20)) % np.uint64(height)
    out["p"] = (h >> np.uint64(45)) & np.uint64(1)
    return out


def load_file(path: str, gap_us: int) -> PacedFile:
    """A recording ready to play in laps ``gap_us`` apart; a missing or unreadable file is a
    ``DeviceError``."""
    p = data_path(path)
    if not p.exists():
        msg = f"simulated camera: recording not found: {p}"
        raise DeviceError(msg)
    try:
        return PacedFile.read(p, gap_us=gap_us)
    except RecordingError as exc:
        msg = f"simulated camera: cannot replay {p}: {exc}"
        raise DeviceError(msg) from None


class SimulatedCamera(Source):
    """A recording (or a synthetic stream) paced like a live camera that drops what it cannot deliver."""

    Config = SimulatedParams
    config: SimulatedParams

    def __init__(self, name: str, config: SimulatedParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self._file: PacedFile | None = None
        self._width = config.width
        self._height = config.height
        self._shedder = LagShedder(name, config.max_lag_us, self.log)
        self._max_lag_us = 0.0
        self._laps = 0

    @override
    async def start(self) -> None:
        if self.config.path:
            # a lap starts one time slice after the last event of the one before
            file = await asyncio.to_thread(load_file, self.config.path, self.config.slice_us)
            if file.events.shape[0] == 0:
                msg = f"simulated camera: {self.config.path} holds no events"
                raise DeviceError(msg)
            self._file, self._width, self._height = file, file.width, file.height

    @property
    @override
    def events_total(self) -> int | None:
        c = self.config
        if self._file is None or c.loop or c.duration_s:
            return None
        return int(self._file.events.shape[0])

    @property
    def sensor_size(self) -> tuple[int, int]:
        """``(width, height)`` of the stream: the file's sensor, or the synthetic one."""
        return self._width, self._height

    # -- the stream ------------------------------------------------------------------------------------
    @property
    def emitted(self) -> int:
        """Events sent so far."""
        return self._shedder.emitted

    @property
    def dropped(self) -> int:
        """Events shed so far because the graph lagged."""
        return self._shedder.dropped

    @property
    def drop_ratio(self) -> float:
        """The share of the stream's events shed so far because the graph lagged."""
        return self._shedder.drop_ratio

    @override
    async def produce(self) -> AsyncIterator[Message]:
        c = self.config
        width, height = self.sensor_size
        us_per_s = 1e6 * c.speed  # stream µs per wall second
        # slices and lag are wall time, as for a camera: in stream time they scale with the speed
        lag_us = round(c.max_lag_us * c.speed)
        slice_us = max(1, round(c.slice_us * c.speed))
        file = self._file
        t_origin = int(file.due[0]) if file is not None else 0
        wall_origin = time.time_ns() // 1000  # the Unix µs stamped on stream time t_origin
        w0 = time.perf_counter()
        t_stop = t_origin + round(c.duration_s * 1e6) if c.duration_s else None
        cursor, lap, k_next = 0, 0, 0
        try:
            while True:
                wall = time.perf_counter()
                now = t_origin + int((wall - w0) * us_per_s)
                final = t_stop is not None and now >= t_stop
                if final:
                    now = t_stop - 1  # type: ignore[operator]
                if file is not None:
                    batches, dropped, cursor, lap, oldest = file.take(cursor, lap, now, lag_us, c.loop)
                    self._laps = lap
                    done = final or (cursor >= file.events.shape[0] and not c.loop)
                else:
                    k_end = math.floor((now - t_origin + 1) * c.rate / 1e6)  # events with t <= now
                    k_cut = max(k_next, math.ceil((now - lag_us - t_origin) * c.rate / 1e6))
                    dropped = min(k_cut, k_end) - k_next if k_cut > k_next else 0
                    k_from = k_next + dropped
                    batches = (
                        [synthetic_events(k_from, k_end, t_origin, c.rate, width, height)] if k_end > k_from else []
                    )
                    oldest = int(batches[0]["t"][0]) if batches else None
                    k_next = max(k_end, k_next)
                    done = final
                self._shedder.note(dropped, wall)
                if oldest is not None:
                    self._max_lag_us = max(self._max_lag_us, (now - oldest) / c.speed)
                late = 0
                for batch in batches:
                    for piece in time_slices(batch, slice_us, len(batch)):
                        # a send that waited may have left the rest of an emission behind: shed it too
                        cut = t_origin + int((time.perf_counter() - w0) * us_per_s) - lag_us
                        if int(piece["t"].max()) < cut:
                            late += int(piece.shape[0])
                            continue
                        self._shedder.emitted += int(piece.shape[0])
                        yield events_message(self._stamped(piece, t_origin, wall_origin), width, height)
                if late:
                    self._shedder.note(late, time.perf_counter())
                if done:
                    return
                due = file.next_due(cursor, lap, now + slice_us) if file is not None else now + slice_us
                if t_stop is not None:
                    due = min(due, t_stop)
                delay = w0 + (due - t_origin) / us_per_s - time.perf_counter()
                await asyncio.sleep(max(0.0, delay))
        finally:
            self._shedder.finish()

    def _stamped(self, events: np.ndarray, t_origin: int, wall_origin: int) -> np.ndarray:
        """``events`` (stream time) stamped with the wall clock: ``wall_origin`` at ``t_origin``, stream
        time divided by ``speed``."""
        out = copy_records(events)
        if self.config.speed == 1.0:
            out["t"] += wall_origin - t_origin
        else:
            out["t"] = wall_origin + np.floor((events["t"] - t_origin) / self.config.speed).astype(np.int64)
        return out

    @override
    def results(self) -> dict[str, Any]:
        return self._shedder.results() | {
            "max_lag_ms": round(self._max_lag_us / 1000, 3),
            "laps": self._laps,
        }
