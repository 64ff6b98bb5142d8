"""``type = "jsonl"``: appends one JSON object per prediction record (format in ``nodes.sinks.predictions``)
to a file, flushed after every batch so that ``tail -f`` shows them as they come. An existing file is
appended to; if its last line was cut short (a crash mid-write), a newline is added first so that every
later line is still valid JSON on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from typing_extensions import override

from pipeline.errors import ConfigError
from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext

from .predictions import KindCounter, check_predictions, prediction_dicts, select, to_json


@dataclass(frozen=True, kw_only=True)
class JsonLinesParams:
    """Parameters of the JSON-lines file sink."""

    path: str  #: file to append to (created with its folder when missing)
    records: Literal["decisions", "all"] = "all"  #: which prediction records to write

    def __post_init__(self) -> None:
        if not self.path:
            msg = "path must not be empty"
            raise ValueError(msg)


class JsonLinesSink(Node):
    """Appends prediction records to a JSON-lines file."""

    Config = JsonLinesParams
    config: JsonLinesParams

    def __init__(self, name: str, config: JsonLinesParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.path = Path(config.path).expanduser()
        self.written = 0
        self.ignored = KindCounter()
        self._file: IO[str] | None = None

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ends_cleanly = True
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as existing:
                existing.seek(-1, 2)
                ends_cleanly = existing.read(1) == b"\n"
        out = self.path.open("a", encoding="utf-8")
        if not ends_cleanly:
            out.write("\n")
            self.log.warning("%s: %s ended mid-line; starting on a new line", self.name, self.path)
        return out

    @override
    async def start(self) -> None:
        try:
            self._file = await asyncio.to_thread(self._open)
        except OSError as exc:
            msg = f"nodes.{self.name}: cannot open {self.path} for appending: {exc}"
            raise ConfigError(msg) from None

    def _write(self, text: str) -> None:
        assert self._file is not None
        self._file.write(text)
        self._file.flush()

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind != PREDICTIONS or msg.data is None:
            self.ignored.add(msg.kind)
            return ()
        check_predictions(msg.data)
        chosen = select(msg.data, self.config.records)
        if chosen.shape[0]:
            text = "".join(to_json(d) + "\n" for d in prediction_dicts(chosen, self.written))
            await asyncio.to_thread(self._write, text)
            self.written += chosen.shape[0]
        return ()

    @override
    async def stop(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @override
    def results(self) -> dict[str, Any]:
        return {"jsonl_path": str(self.path), "jsonl_written": self.written, "jsonl_ignored": self.ignored.as_dict()}
