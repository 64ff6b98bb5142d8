"""File and console sinks.

- ``JsonLinesSink`` appends one JSON object per prediction record (format in ``nodes.sinks``) to a file,
  flushed after every batch so that ``tail -f`` shows them as they come. An existing file is appended
  to; if its last line was cut short (a crash mid-write), a newline is added first so that every later
  line is still valid JSON on its own.
- ``ConsoleSink`` writes one human-readable line per decision and, every ``summary_every_s`` seconds
  and at the end, one compact line with the counts and the running accuracy of the decisions that carry
  a truth. Running predictions are counted, never printed one by one.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from pipeline.errors import ConfigError
from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext

from . import KindCounter, check_predictions, prediction_dicts, select, to_json


@dataclass(frozen=True, kw_only=True)
class JsonLinesParams:
    """Parameters of the JSON-lines file sink."""

    path: str  #: file to append to (created with its folder when missing)
    records: Literal["decisions", "all"] = "all"  #: which prediction records to write

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path must not be empty")


class JsonLinesSink(Node):
    """Appends prediction records to a JSON-lines file."""

    Config = JsonLinesParams

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

    async def start(self) -> None:
        try:
            self._file = await asyncio.to_thread(self._open)
        except OSError as exc:
            raise ConfigError(f"nodes.{self.name}: cannot open {self.path} for appending: {exc}") from None

    def _write(self, text: str) -> None:
        assert self._file is not None
        self._file.write(text)
        self._file.flush()

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

    async def stop(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def results(self) -> dict[str, Any]:
        return {"jsonl_path": str(self.path), "jsonl_written": self.written, "jsonl_ignored": self.ignored.as_dict()}


@dataclass(frozen=True, kw_only=True)
class ConsoleParams:
    """Parameters of the console sink."""

    decisions: bool = True  #: one line per decision (false: only the periodic summaries)
    summary_every_s: float = 5.0  #: wall seconds between summary lines (0: only at the end)
    stream: Literal["stdout", "stderr"] = "stdout"  #: where to write
    class_names: tuple[str, ...] = ()  #: optional names of the classes, shown next to their numbers

    def __post_init__(self) -> None:
        if self.summary_every_s < 0:
            raise ValueError(f"summary_every_s must be >= 0, got {self.summary_every_s}")


class ConsoleSink(Node):
    """Human-readable predictions on the console (see the module docstring)."""

    Config = ConsoleParams

    def __init__(self, name: str, config: ConsoleParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.out: IO[str] = sys.stdout if config.stream == "stdout" else sys.stderr
        self.running = 0  #: running predictions seen
        self.decisions = 0  #: decisions seen
        self.judged = {True: 0, False: 0}  #: decisions with a truth, by train flag
        self.correct = {True: 0, False: 0}
        self.ignored = KindCounter()
        self._last_summary = time.monotonic()

    def name_of(self, label: int) -> str:
        names = self.config.class_names
        if label < 0:
            return "none"
        return f"{label} ({names[label]})" if label < len(names) else str(label)

    def decision_line(self, t: int, label: int, truth: int, train: bool, score: float) -> str:
        """``t=12.345678s decision 3 score 4.25 truth 3 ok [train]``."""
        line = f"t={t / 1e6:.6f}s decision {self.name_of(label)} score {score:.4g}"
        if truth >= 0:
            line += f" truth {self.name_of(truth)} {'ok' if truth == label else 'WRONG'}"
        return line + (" [train]" if train else " [test]")

    def summary_line(self) -> str:
        """``decisions 120 (test 80/100 = 80.0%, train 15/20 = 75.0%), running predictions 5321``."""
        parts = []
        for train, what in ((False, "test"), (True, "train")):
            n = self.judged[train]
            if n:
                parts.append(f"{what} {self.correct[train]}/{n} = {100.0 * self.correct[train] / n:.1f}%")
        acc = f" ({', '.join(parts)})" if parts else ""
        return f"decisions {self.decisions}{acc}, running predictions {self.running}"

    def _emit(self, lines: list[str]) -> None:
        if lines:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind != PREDICTIONS or msg.data is None:
            self.ignored.add(msg.kind)
            return ()
        recs = msg.data
        check_predictions(recs)
        is_dec = recs["decision"] == 1
        self.running += int(recs.shape[0] - np.count_nonzero(is_dec))
        dec = recs[is_dec]
        lines: list[str] = []
        if dec.shape[0]:
            self.decisions += dec.shape[0]
            has_truth = dec["truth"] >= 0
            for train in (False, True):
                sel = has_truth & ((dec["train"] == 1) == train)
                self.judged[train] += int(np.count_nonzero(sel))
                self.correct[train] += int(np.count_nonzero(sel & (dec["label"] == dec["truth"])))
            if self.config.decisions:
                labels = dec["label"]
                top = np.where(labels >= 0, dec["scores"][np.arange(dec.shape[0]), np.maximum(labels, 0)], 0.0)
                for t, lab, tr, tn, s in zip(
                    dec["t"].tolist(),
                    labels.tolist(),
                    dec["truth"].tolist(),
                    dec["train"].tolist(),
                    top.tolist(),
                    strict=True,
                ):
                    lines.append(self.decision_line(t, lab, tr, bool(tn), s))
        period = self.config.summary_every_s
        if period > 0 and time.monotonic() - self._last_summary >= period:
            self._last_summary = time.monotonic()
            lines.append(self.summary_line())
        self._emit(lines)
        return ()

    async def flush(self) -> Sequence[Message]:
        self._emit([self.summary_line()])
        return ()

    def results(self) -> dict[str, Any]:
        acc = {
            f"console_{what}_accuracy": round(self.correct[train] / self.judged[train], 6)
            for train, what in ((False, "test"), (True, "train"))
            if self.judged[train]
        }
        return {"console_decisions": self.decisions, "console_running": self.running, **acc}
