"""Pacing a stream by its own timestamps, and cutting it into time slices for a paced send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np


class Pacer:
    """Paces a stream by its own timestamps: ``speed`` 1.0 = real time, 4.0 = four times faster, 0 = no
    pacing (as fast as the graph accepts). The first timestamp seen is the origin."""

    def __init__(self, speed: float) -> None:
        if speed < 0:
            msg = f"speed must be >= 0, got {speed}"
            raise ValueError(msg)
        self.speed = speed
        self._wall0 = 0.0
        self._t0: int | None = None

    def due(self, t_us: int) -> float:
        """Seconds to wait before an event with timestamp ``t_us`` may leave (<= 0: now)."""
        if self.speed <= 0:
            return 0.0
        if self._t0 is None:
            self._t0, self._wall0 = t_us, time.perf_counter()
        return self._wall0 + (t_us - self._t0) / 1e6 / self.speed - time.perf_counter()

    async def wait(self, t_us: int) -> None:
        """Sleep until an event with timestamp ``t_us`` is due (returns at once when unpaced or late)."""
        delay = self.due(t_us)
        if delay > 0:
            await asyncio.sleep(delay)


def time_slices(events: np.ndarray, slice_us: int, max_events: int) -> Iterator[np.ndarray]:
    """Consecutive pieces of ``events`` covering at most ``slice_us`` of stream time and ``max_events``."""
    if events.shape[0] == 0:
        return
    t = events["t"]
    edges = np.arange(int(t[0]) // slice_us + 1, int(t[-1]) // slice_us + 1, dtype=np.int64) * slice_us
    cuts = np.searchsorted(t, edges, side="left")
    start = 0
    for cut in [*cuts.tolist(), events.shape[0]]:
        while cut - start > max_events:
            yield events[start : start + max_events]
            start += max_events
        if cut > start:
            yield events[start:cut]
            start = cut
