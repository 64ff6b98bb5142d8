"""``type = "playback"``: plays a message log (written by the ``record`` sink) back into a graph.

Every kept message leaves again in its order, with its data, sensor size and control commands as recorded:
events, spikes, labels (with their train/evaluation flags), predictions, and the freeze / unfreeze /
relabel controls that delimited phases. So the downstream of a recorded link sees the same stream again
without the upstream stages: a network's top layer can be tuned over recorded features, a live session
replayed into a fresh network. ``speed`` paces the messages by their first timestamp (1 = as recorded);
0 sends them as fast as the graph takes them. A log cut short by a crash is played up to its last whole
message, with a warning saying where it ends. The number of messages sent is the checkpointed position.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from typing_extensions import override

from nodes.sources.pacing import Pacer
from pipeline.config import data_path, where_looked
from pipeline.errors import ConfigError
from pipeline.message import Message
from pipeline.node import NodeContext, Source
from pipeline.progress import Progress
from recordings.messages import MAGIC, TruncatedLogError, read_messages


@dataclass(frozen=True, kw_only=True)
class PlaybackParams:
    """Parameters of the message-log source."""

    path: str  #: the log (absolute, relative to the current folder, or to SPIKESTREAM_DATA)
    speed: float = 0.0  #: 1.0 = as recorded, 4.0 = four times faster, 0 = as fast as the graph takes them

    def __post_init__(self) -> None:
        if not self.path:
            msg = "path must not be empty"
            raise ValueError(msg)
        if not self.speed >= 0:
            msg = f"speed must be >= 0, got {self.speed!r}"
            raise ValueError(msg)


def _first_t(msg: Message) -> int | None:
    if msg.data is None or msg.data.shape[0] == 0 or "t" not in (msg.data.dtype.names or ()):
        return None
    return int(msg.data["t"][0])


class Playback(Source):
    """Sends the messages of a log, in order."""

    Config = PlaybackParams
    config: PlaybackParams

    @classmethod
    @override
    def check_available(cls, name: str, config: PlaybackParams) -> None:
        if not data_path(config.path).exists():
            msg = f"nodes.{name}.path: not found (looked for {where_looked(config.path)})"
            raise ConfigError(msg)

    def __init__(self, name: str, config: PlaybackParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.path = data_path(config.path)
        self._resume_at = 0
        self.events = 0

    @override
    async def start(self) -> None:
        try:
            with self.path.open("rb") as f:
                magic = f.read(len(MAGIC))
        except OSError as exc:
            msg = f"nodes.{self.name}.path: cannot open {self.path}: {exc.strerror}"
            raise ConfigError(msg) from None
        if magic != MAGIC:
            msg = (
                f"nodes.{self.name}.path: {self.path} is not a spikestream message log (written by a 'record' "
                'sink); event recordings (AEDAT, EVT, N-MNIST...) are played by type = "replay"'
            )
            raise ConfigError(msg)

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        return {"delivered": np.array([self.delivered], dtype=np.int64)}

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.delivered = self._resume_at = int(state["delivered"][0])
        self.log.info("%s: resuming after the %d messages already delivered", self.name, self._resume_at)

    @override
    async def produce(self) -> AsyncIterator[Message]:
        messages: Iterator[Message] = read_messages(self.path)
        pacer = Pacer(self.config.speed)
        progress = Progress(f"{self.name}: {self.path.name}", None, self.log)
        position = 0
        while True:
            try:
                msg = await asyncio.to_thread(next, messages, None)
            except TruncatedLogError as exc:
                self.log.warning(
                    "%s: %s; played the %d whole messages before it (was the recorder stopped mid-write?)",
                    self.name,
                    exc,
                    position,
                )
                break
            if msg is None:
                break
            position += 1
            if position <= self._resume_at:
                continue
            t = _first_t(msg)
            if t is not None:
                await pacer.wait(t)
            if msg.data is not None and msg.data.dtype.names and "x" in msg.data.dtype.names:
                self.events += msg.data.shape[0]
                progress.update(0, msg.data.shape[0])
            # sent as a new message of this source: the runtime gives it this stream's id, sequence number
            # and creation time
            yield replace(msg, stream="", seq=-1, created_ns=0)
        progress.close()

    @override
    def results(self) -> dict[str, Any]:
        return {"playback_path": str(self.path), "playback_events": self.events}
