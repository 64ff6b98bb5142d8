"""A simulated live camera: replays a recording in real time, or makes a synthetic stream at a set rate.

``SimulatedCamera`` behaves like a camera that keeps running whatever the graph does. Stream time is
tied to the wall clock: ``stream_now = t_origin + elapsed_wall * speed``. Every ``slice_us`` of stream
time it emits the events that have come due since the previous emission (a short time slice, as a camera
commits a packet every millisecond or so).

When the consumer is slow (the graph's back-pressure makes the send wait), the camera does not fall
behind: at the next emission, every event older than ``stream_now - max_lag_us`` is dropped (its wall
time has passed), counted, and a log line says when dropping starts and when it stops. So the lag of
what is emitted stays within ``max_lag_us`` (plus one emission's send time), and
``events_emitted + events_dropped`` is everything the camera produced.

Modes:

* ``path``: a recording (any format ``recordings.open_recording`` reads; relative paths resolve with
  ``pipeline.config.data_path``), played in laps by ``nodes.sources.paced_file.PacedFile``, the file
  playback the ``replay`` source uses too. Timestamps are moved to the wall clock, as a live camera
  stamps its events: the first event gets the Unix time in µs when the stream starts, the others keep
  their distance to it (so labels taught live, stamped with the wall clock, line up with the replayed
  scene; the ``replay`` source keeps a file's own timestamps). With ``loop``, lap ``k`` adds
  ``k * (t_last - t_first + slice_us)`` so that they keep increasing.
* ``rate`` (no ``path``): ``rate`` events per second of stream time, event ``k`` at
  ``t_origin + k * 1e6 / rate`` µs, where ``t_origin`` is the Unix time in µs when the stream starts, so
  that at ``speed = 1`` an event's timestamp is its wall-clock birth time (latency benchmarks use that).
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
from pipeline.config import data_path
from pipeline.errors import DeviceError, RecordingError
from pipeline.events import EVENT_DTYPE, copy_records
from pipeline.message import Message, events_message
from pipeline.node import NodeContext, Source


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
    #: Stream time between emissions in µs (>= 1): the size of the time slices a live camera commits.
    slice_us: int = 1000
    #: Events whose stream time is more than this many µs in the past at an emission are dropped (>= 1).
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
        self.emitted = 0
        self.dropped = 0
        self._episodes = 0
        self._dropping = False
        self._episode_drops = 0
        self._last_drop_wall = 0.0
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
    def _note_drops(self, dropped: int, wall: float) -> None:
        c = self.config
        if dropped:
            self.dropped += dropped
            self._episode_drops += dropped
            self._last_drop_wall = wall
            if not self._dropping:
                self._dropping = True
                self._episodes += 1
                self.log.warning(
                    "%s: consumer too slow, dropping events more than %.1f ms (stream time) old",
                    self.name,
                    c.max_lag_us / 1000,
                )
        elif self._dropping and wall - self._last_drop_wall > 1.0:
            self._end_episode()

    def _end_episode(self) -> None:
        self.log.warning(
            "%s: caught up; dropped %d events in that episode (%d in all, %.2f%% of the stream)",
            self.name,
            self._episode_drops,
            self.dropped,
            100 * self.drop_ratio,
        )
        self._dropping = False
        self._episode_drops = 0

    @property
    def drop_ratio(self) -> float:
        """The share of the stream's events dropped so far because the graph lagged."""
        total = self.emitted + self.dropped
        return self.dropped / total if total else 0.0

    @override
    async def produce(self) -> AsyncIterator[Message]:
        c = self.config
        width, height = self.sensor_size
        us_per_s = 1e6 * c.speed  # stream µs per wall second
        file = self._file
        t_origin = int(file.due[0]) if file is not None else time.time_ns() // 1000
        # a replay runs in the file's time internally and is stamped with the wall clock on the way out
        to_wall = time.time_ns() // 1000 - t_origin if file is not None else 0
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
                    batches, dropped, cursor, lap, oldest = file.take(cursor, lap, now, c.max_lag_us, c.loop)
                    self._laps = lap
                    done = final or (cursor >= file.events.shape[0] and not c.loop)
                else:
                    k_end = math.floor((now - t_origin + 1) * c.rate / 1e6)  # events with t <= now
                    k_cut = max(k_next, math.ceil((now - c.max_lag_us - t_origin) * c.rate / 1e6))
                    dropped = min(k_cut, k_end) - k_next if k_cut > k_next else 0
                    k_from = k_next + dropped
                    batches = (
                        [synthetic_events(k_from, k_end, t_origin, c.rate, width, height)] if k_end > k_from else []
                    )
                    oldest = int(batches[0]["t"][0]) if batches else None
                    k_next = max(k_end, k_next)
                    done = final
                self._note_drops(dropped, wall)
                if oldest is not None:
                    self._max_lag_us = max(self._max_lag_us, (now - oldest) / c.speed)
                for batch in batches:
                    self.emitted += int(batch.shape[0])
                    out = batch
                    if to_wall:
                        out = copy_records(batch)
                        out["t"] += to_wall
                    yield events_message(out, width, height)
                if done:
                    return
                due = file.next_due(cursor, lap, now + c.slice_us) if file is not None else now + c.slice_us
                if t_stop is not None:
                    due = min(due, t_stop)
                delay = w0 + (due - t_origin) / us_per_s - time.perf_counter()
                await asyncio.sleep(max(0.0, delay))
        finally:
            if self._dropping:
                self._end_episode()

    @override
    def results(self) -> dict[str, Any]:
        return {
            "events_emitted": self.emitted,
            "events_dropped": self.dropped,
            "drop_ratio": round(self.drop_ratio, 6),
            "drop_episodes": self._episodes,
            "max_lag_ms": round(self._max_lag_us / 1000, 3),
            "laps": self._laps,
        }
