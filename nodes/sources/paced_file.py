"""A recording laid on a looping time line: the file playback that ``type = "replay"`` (a single file)
and the simulated camera (``devices.simulated``) share.

The whole file is read once, with its sensor size (or its events' extent when it states none), and
optionally cut to a window. It plays in laps: lap ``k`` is the file shifted by ``k * period``, where
``period`` spans the file plus ``gap_us``, so timestamps keep increasing from lap to lap. An event is
due at the running maximum of the timestamps before it (``due``): a file whose timestamps step back
now and then is still played in its own order.

The two users pace it differently, from the same laps: the replay source is lossless (``pieces``: each
piece leaves when its time comes, however late), the simulated camera keeps to the wall clock and drops
what has fallen too far behind (``take``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from nodes.sources.pacing import time_slices
from pipeline.events import copy_records


@dataclass(frozen=True, eq=False)
class PacedFile:
    """The events of a recording, its sensor size, and the time line of its laps."""

    events: np.ndarray
    width: int
    height: int
    #: true when the file states no sensor size and ``width``/``height`` are its events' extent
    size_from_events: bool
    #: µs from the last event of a lap to the first of the next, on top of the file's own span
    gap_us: int

    @classmethod
    def read(cls, path: Path, *, gap_us: int, start_us: int = 0, stop_us: int = 0) -> PacedFile:
        """Read the recording at ``path`` (blocking: call it in a worker thread). ``start_us`` /
        ``stop_us``: the part to keep, relative to the first event (``stop_us`` 0 = to the end).
        Raises ``RecordingError`` for a file that cannot be read."""
        from recordings import open_recording, sensor_size

        rec = open_recording(path)
        events = rec.read_all()
        width, height = sensor_size(rec, events)
        if events.shape[0] and (start_us or stop_us):
            due = np.maximum.accumulate(events["t"])
            first = int(due[0])
            lo = np.searchsorted(due, first + start_us, side="left")
            hi = np.searchsorted(due, first + stop_us, side="left") if stop_us else events.shape[0]
            events = events[lo:hi]
        return cls(
            events=events,
            width=width,
            height=height,
            size_from_events=(width, height) != (rec.width, rec.height),
            gap_us=gap_us,
        )

    @cached_property
    def due(self) -> np.ndarray:
        """When each event is due in lap 0: the running maximum of the timestamps (file order kept)."""
        return np.maximum.accumulate(self.events["t"].astype(np.int64))

    @cached_property
    def period(self) -> int:
        """How far each lap is shifted from the one before (0 for a file with no events)."""
        due = self.due
        return int(due[-1] - due[0]) + self.gap_us if due.shape[0] else 0

    def shifted(self, events: np.ndarray, lap: int) -> np.ndarray:
        """``events`` (a part of the file) as they play in lap ``lap``: copied only when shifted."""
        shift = lap * self.period
        if not shift:
            return events
        out = copy_records(events)
        out["t"] += shift
        return out

    # -- lossless: every event, in pieces -----------------------------------------------------------------
    def pieces(self, lap: int, slice_us: int, max_events: int) -> Iterator[np.ndarray]:
        """Lap ``lap`` in consecutive pieces of at most ``max_events``, each also within one
        ``slice_us`` of stream time when ``slice_us`` > 0 (for a paced send)."""
        ev = self.events
        parts = (
            time_slices(ev, slice_us, max_events)
            if slice_us > 0
            else (ev[i : i + max_events] for i in range(0, ev.shape[0], max_events))
        )
        for part in parts:
            yield self.shifted(part, lap)

    # -- by a clock: what is due, dropping what is too old -------------------------------------------------
    def take(
        self, cursor: int, lap: int, now: int, max_lag_us: int, loop: bool
    ) -> tuple[list[np.ndarray], int, int, int, int | None]:
        """Everything due up to stream time ``now`` from position ``(cursor, lap)`` on, dropping the
        events due before ``now - max_lag_us``; with ``loop``, lap after lap. Returns ``(batches,
        dropped, cursor, lap, due time of the oldest event taken or None)``."""
        due = self.due
        n = due.shape[0]
        period = self.period
        out: list[np.ndarray] = []
        dropped = 0
        oldest: int | None = None
        while True:
            shift = lap * period
            local = now - shift
            end = int(np.searchsorted(due, local, side="right"))
            cut = int(np.searchsorted(due, local - max_lag_us, side="left"))
            if cut > cursor:
                dropped += cut - cursor
                cursor = cut
            if end > cursor:
                if oldest is None:
                    oldest = int(due[cursor]) + shift
                out.append(self.shifted(self.events[cursor:end], lap))
                cursor = end
            if cursor == n and loop:
                lap += 1
                cursor = 0
                continue
            return out, dropped, cursor, lap, oldest

    def next_due(self, cursor: int, lap: int, not_before: int) -> int:
        """Stream time of the next event from position ``(cursor, lap)``, or ``not_before`` if later
        (or if the file is played out)."""
        due = self.due
        if cursor >= due.shape[0]:
            return not_before
        return max(not_before, int(due[cursor]) + lap * self.period)
