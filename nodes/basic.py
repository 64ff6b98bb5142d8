"""Small general-purpose nodes: a synthetic event source, a pass-through, a checksum sink.

They exercise the runtime (tests, the transport benchmark, the README's first graph) without any data.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.events import EVENT_DTYPE, copy_records
from pipeline.message import EVENTS, Message, events_message
from pipeline.node import Node, NoParams, Source


@dataclass(frozen=True, kw_only=True)
class SyntheticParams:
    """Parameters of the synthetic source."""

    events: int = 1_000_000  #: events in total (>= 0)
    batch: int = 10_000  #: events per message (>= 1)
    width: int = 128  #: sensor width in pixels
    height: int = 128  #: sensor height in pixels
    dt_us: int = 1  #: timestamp step between consecutive events, µs (>= 0)
    checksum: bool = True  #: hash every emitted byte (reported as ``source_checksum``); off for benchmarks
    rate: float = 0.0  #: events per second of wall time (paced like a camera); 0 = as fast as the graph takes

    def __post_init__(self) -> None:
        if self.events < 0:
            msg = f"events must be >= 0, got {self.events}"
            raise ValueError(msg)
        if self.batch < 1:
            msg = f"batch must be >= 1, got {self.batch}"
            raise ValueError(msg)
        if not (1 <= self.width <= 65535 and 1 <= self.height <= 65535):
            msg = f"width/height must be in 1..65535, got {self.width}x{self.height}"
            raise ValueError(msg)
        if self.dt_us < 0:
            msg = f"dt_us must be >= 0, got {self.dt_us}"
            raise ValueError(msg)
        if self.rate < 0:
            msg = f"rate must be >= 0 events/s, got {self.rate}"
            raise ValueError(msg)


def synthetic_batch(start: int, n: int, width: int, height: int, dt_us: int) -> np.ndarray:
    """Events ``start .. start+n-1`` of a batch of the synthetic stream: a pixel walk over the sensor with
    alternating polarity pairs, one event every ``dt_us``. The pixel pattern restarts in every batch."""
    j = np.arange(n, dtype=np.int64)
    out = np.empty(n, dtype=EVENT_DTYPE)
    out["t"] = (start + j) * dt_us
    out["x"] = (j * 7) % width
    out["y"] = ((j * 13) // 5) % height
    out["p"] = (j >> 1) & 1
    return out


class SyntheticSource(Source):
    """Emits a deterministic stream of ``events`` events in batches of ``batch``; reports its checksum."""

    Config = SyntheticParams
    config: SyntheticParams

    def __init__(self, name: str, config: SyntheticParams, context: Any) -> None:
        super().__init__(name, config, context)
        self._hash = hashlib.blake2b(digest_size=16)

    @property
    @override
    def events_total(self) -> int:
        return int(self.config.events)

    @override
    async def produce(self) -> AsyncIterator[Message]:
        c = self.config
        template = synthetic_batch(0, min(c.batch, c.events), c.width, c.height, c.dt_us)
        t0 = time.perf_counter()
        for start in range(0, c.events, c.batch):
            if c.rate > 0:
                ahead = start / c.rate - (time.perf_counter() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            n = min(c.batch, c.events - start)
            batch = copy_records(template[:n])
            batch["t"] += start * c.dt_us
            if c.checksum:
                self._hash.update(batch.tobytes())
            yield events_message(batch, c.width, c.height)
            await asyncio.sleep(0)

    @override
    def results(self) -> dict[str, Any]:
        return {"source_checksum": self._hash.hexdigest()}


class NullSink(Node):
    """Receives and discards everything (its counters are the measurement)."""

    Config = NoParams


@dataclass(frozen=True, kw_only=True)
class IdentityParams:
    """Parameters of the identity relay."""

    delay_ms: float = 0.0  #: wall time spent on each message: a stand-in for a slow stage (>= 0)

    def __post_init__(self) -> None:
        if self.delay_ms < 0:
            msg = f"delay_ms must be >= 0, got {self.delay_ms}"
            raise ValueError(msg)


class Identity(Node):
    """Forwards every message unchanged (the building block of transport tests and benchmarks)."""

    Config = IdentityParams
    config: IdentityParams

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if self.config.delay_ms:
            await asyncio.sleep(self.config.delay_ms / 1000)
        return (msg,)


class ChecksumSink(Node):
    """Counts events and hashes their bytes in arrival order (a stream hash: batch sizes do not matter)."""

    Config = NoParams

    def __init__(self, name: str, config: NoParams, context: Any) -> None:
        super().__init__(name, config, context)
        self._hash = hashlib.blake2b(digest_size=16)
        self._events = 0
        self._out_of_order = 0
        self._last_t = np.iinfo(np.int64).min

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == EVENTS and msg.data is not None and msg.count:
            data = msg.data
            self._hash.update(np.ascontiguousarray(data).tobytes())
            self._events += msg.count
            t = data["t"]
            self._out_of_order += int(np.count_nonzero(np.diff(t) < 0)) + int(t[0] < self._last_t)
            self._last_t = int(t[-1])
        return ()

    @override
    def results(self) -> dict[str, Any]:
        return {
            "sink_checksum": self._hash.hexdigest(),
            "sink_events": self._events,
            "sink_out_of_order": self._out_of_order,
        }
