"""``type = "record"``: keeps every message it receives in a message log (``recordings.messages``), to be
played back later by the ``playback`` source: the output of a camera's encoder with the labels a person
gave, the features of a trained network for tuning its top layer, the predictions of a deployment.

Data messages of the chosen kinds and the ``freeze`` / ``unfreeze`` / ``relabel`` controls are kept, in the
order they arrived; checkpoint markers and metrics are not (they belong to the run, not to the stream).
An existing file is never replaced. The log's length is part of the checkpoint: a graph resumed from one
cuts the log back to what had been written at that checkpoint and goes on from there, so a stream that is
interrupted and resumed leaves the same log as an uninterrupted one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.errors import CheckpointError, ConfigError, RecordingError
from pipeline.message import CHECKPOINT, CONTROL, EVENTS, KINDS, LABELS, METRICS, PREDICTIONS, SPIKES, Message
from pipeline.node import Node, NodeContext
from recordings.messages import MessageLogWriter


@dataclass(frozen=True, kw_only=True)
class RecordParams:
    """Parameters of the message-log sink."""

    path: str  #: the log file (created with its folder; must not exist unless resuming from a checkpoint)
    kinds: tuple[str, ...] = (EVENTS, SPIKES, LABELS, PREDICTIONS, CONTROL)  #: which kinds of message to keep

    def __post_init__(self) -> None:
        if not self.path:
            msg = "path must not be empty"
            raise ValueError(msg)
        unknown = [k for k in self.kinds if k not in KINDS or k == METRICS]
        if unknown:
            known = ", ".join(k for k in KINDS if k != METRICS)
            msg = f"kinds: cannot record {', '.join(map(repr, unknown))}; choose from {known}"
            raise ValueError(msg)


class RecordSink(Node):
    """Writes the messages it receives to a message log."""

    Config = RecordParams
    config: RecordParams

    def __init__(self, name: str, config: RecordParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.path = Path(config.path).expanduser()
        self.kept = 0
        self.skipped = 0
        self._resume_at: int | None = None
        self._log: MessageLogWriter | None = None

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        self._resume_at = int(state["offset"][0])

    @override
    async def start(self) -> None:
        try:
            self._log = await asyncio.to_thread(MessageLogWriter, self.path, self._resume_at)
        except RecordingError as exc:
            msg = f"nodes.{self.name}: {exc}"
            raise (CheckpointError if self._resume_at is not None else ConfigError)(msg) from None
        except OSError as exc:
            msg = f"nodes.{self.name}: cannot create {self.path}: {exc.strerror}"
            raise ConfigError(msg) from None
        if self._resume_at is not None:
            self.log.info("%s: %s cut back to the checkpoint's %d bytes", self.name, self.path, self._resume_at)

    async def _keep(self, msg: Message) -> None:
        assert self._log is not None
        await asyncio.to_thread(self._log.write, msg)
        self.kept += 1

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind in self.config.kinds:
            await self._keep(msg)
        else:
            self.skipped += 1
        return ()

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        if msg.command != CHECKPOINT and CONTROL in self.config.kinds:
            assert self._log is not None
            self._log.write(msg)  # small: no thread needed
            self.kept += 1
        return ()

    @override
    def snapshot(self) -> dict[str, np.ndarray] | None:
        if self._log is None:
            return None
        return {"offset": np.array([self._log.sync()], dtype=np.int64)}

    @override
    async def stop(self) -> None:
        if self._log is not None:
            await asyncio.to_thread(self._log.close)
            self._log = None

    @override
    def results(self) -> dict[str, Any]:
        return {"record_path": str(self.path), "record_messages": self.kept, "record_skipped": self.skipped}
