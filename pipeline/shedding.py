"""Load shedding for live sources: what leaves a camera is never more than ``max_lag_us`` old.

A camera keeps producing whatever the graph does. When the graph falls behind, its bounded links fill and
the source's send waits; rather than queue the backlog, a live source sheds the oldest whole time slices,
the events whose time passed more than ``max_lag_us`` ago. The graph then sees a stream with holes in
time, never a delayed one: an answer about the scene is at most ``max_lag_us`` plus the links' short
queues late. What is shed is counted, and a warning marks each episode's start and end.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np


class LagShedder:
    """The counts and log lines of a live source's shedding; ``shed`` applies the rule to a batch."""

    def __init__(self, name: str, max_lag_us: int, log: logging.Logger) -> None:
        if max_lag_us < 1:
            msg = f"max_lag_us must be >= 1 µs, got {max_lag_us}"
            raise ValueError(msg)
        self.name = name
        self.max_lag_us = max_lag_us
        self.log = log
        self.emitted = 0
        self.dropped = 0
        self.episodes = 0
        self._episode_drops = 0
        self._last_drop_wall: float | None = None

    @property
    def drop_ratio(self) -> float:
        """The share of the stream's events shed so far."""
        total = self.emitted + self.dropped
        return self.dropped / total if total else 0.0

    def shed(self, events: np.ndarray, now_us: int, wall: float) -> np.ndarray:
        """The events of ``events`` (in time order) at most ``max_lag_us`` older than ``now_us``; the
        rest is counted as shed. ``wall`` is the caller's monotonic clock, for the episode log."""
        cut = int(np.searchsorted(events["t"], now_us - self.max_lag_us, side="left"))
        self.note(cut, wall)
        kept = events[cut:]
        self.emitted += int(kept.shape[0])
        return kept

    def note(self, dropped: int, wall: float) -> None:
        """Count ``dropped`` events shed now (0: none); an episode ends after a second without."""
        if dropped:
            self.dropped += dropped
            self._episode_drops += dropped
            if self._last_drop_wall is None:
                self.episodes += 1
                self.log.warning(
                    "%s: the graph is too slow, shedding events more than %.1f ms old",
                    self.name,
                    self.max_lag_us / 1000,
                )
            self._last_drop_wall = wall
        elif self._last_drop_wall is not None and wall - self._last_drop_wall > 1.0:
            self.finish()

    def finish(self) -> None:
        """Close an open episode with its log line (at the end of the stream, too)."""
        if self._last_drop_wall is None:
            return
        self.log.warning(
            "%s: caught up; shed %d events in that episode (%d in all, %.2f%% of the stream)",
            self.name,
            self._episode_drops,
            self.dropped,
            100 * self.drop_ratio,
        )
        self._last_drop_wall = None
        self._episode_drops = 0

    def results(self) -> dict[str, Any]:
        """The counts for the source's results."""
        return {
            "events_emitted": self.emitted,
            "events_dropped": self.dropped,
            "drop_ratio": round(self.drop_ratio, 6),
            "drop_episodes": self.episodes,
        }
