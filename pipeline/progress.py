"""Progress output for long runs: an updating line on a terminal, periodic log lines otherwise; and the
periodic log line of a node's counters."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .node import Counters


class Progress:
    """Tracks done/total units (samples) and events; ``update`` is cheap and prints at most every
    ``every_s`` seconds (a terminal line is redrawn more often)."""

    def __init__(self, label: str, total: int | None, log: logging.Logger, every_s: float = 10.0) -> None:
        self.label = label
        self.total = total
        self.log = log
        self.tty = sys.stderr.isatty()
        self.every_s = 0.5 if self.tty else every_s
        self.done = 0
        self.events = 0
        self.t0 = time.monotonic()
        self._last = self.t0
        self.extra = ""

    def line(self) -> str:
        """The progress as one line: a bar and the time left when the total is known, else the events."""
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = self.events / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            left = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
            bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
            eta = f"{left:5.0f} s left" if left == left else "  ? s left"
            return f"{self.label} [{bar}] {self.done}/{self.total} samples, {rate / 1e6:.2f} M ev/s, {eta}{self.extra}"
        # no sample count known (a file, a log): events are the measure
        return f"{self.label} {self.events:,} events, {rate / 1e6:.2f} M ev/s{self.extra}"

    def update(self, done: int = 0, events: int = 0) -> None:
        """Count ``done`` units and ``events`` more; shows the line when ``every_s`` has passed."""
        self.done += done
        self.events += events
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        self.show()

    def show(self) -> None:
        """Show the current line now: redrawn in place on a terminal, logged otherwise."""
        if self.tty:
            sys.stderr.write("\r" + self.line()[:150].ljust(150))
            sys.stderr.flush()
        else:
            self.log.info("%s", self.line())

    def close(self) -> None:
        """Show the final line and end it (a terminal keeps it on screen)."""
        if self.tty:
            sys.stderr.write("\r" + self.line()[:150].ljust(150) + "\n")
            sys.stderr.flush()
        else:
            self.log.info("%s (done)", self.line())


async def log_counters(name: str, counters: Counters, *, every_s: float, sent: bool, log: logging.Logger) -> None:
    """Log a node's counters every ``every_s`` seconds (0: never) until cancelled, with the rate of the
    events it sends (``sent``: a source) or receives."""
    if every_s <= 0:
        return
    last_events = 0
    while True:
        await asyncio.sleep(every_s)
        c = counters
        moved = c.events_out if sent else c.events_in
        rate = (moved - last_events) / every_s
        last_events = moved
        lat = c.latency.summary()
        log.info(
            "%s: %d msgs/%d events in, %d/%d out, %.2f M ev/s, gaps %d, drops %d, malformed %d%s%s%s",
            name,
            c.messages_in,
            c.events_in,
            c.messages_out,
            c.events_out,
            rate / 1e6,
            c.gaps,
            c.drops,
            c.malformed,
            f", shed {c.shed}" if c.shed else "",
            f", latency p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms" if lat else "",
            f", checkpoint {c.checkpoint_ms} ms" if c.checkpoints else "",
        )
