"""``type = "console"``: one human-readable line per decision and, every ``summary_every_s`` seconds and
at the end, one compact line with the counts and the running accuracy of the decisions that carry a
truth. Running predictions are counted, never printed one by one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
from typing_extensions import override

from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext

from .predictions import KindCounter, check_predictions


@dataclass(frozen=True, kw_only=True)
class ConsoleParams:
    """Parameters of the console sink."""

    decisions: bool = True  #: one line per decision (false: only the periodic summaries)
    summary_every_s: float = 5.0  #: wall seconds between summary lines (0: only at the end)
    stream: Literal["stdout", "stderr"] = "stdout"  #: where to write
    class_names: tuple[str, ...] = ()  #: optional names of the classes, shown next to their numbers

    def __post_init__(self) -> None:
        if self.summary_every_s < 0:
            msg = f"summary_every_s must be >= 0, got {self.summary_every_s}"
            raise ValueError(msg)


class ConsoleSink(Node):
    """Human-readable predictions on the console (see the module docstring)."""

    Config = ConsoleParams
    config: ConsoleParams

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
        """``label`` with its class name when one is configured; ``none`` for an unknown label."""
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

    @override
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

    @override
    async def flush(self) -> Sequence[Message]:
        self._emit([self.summary_line()])
        return ()

    @override
    def results(self) -> dict[str, Any]:
        acc = {
            f"console_{what}_accuracy": round(self.correct[train] / self.judged[train], 6)
            for train, what in ((False, "test"), (True, "train"))
            if self.judged[train]
        }
        return {"console_decisions": self.decisions, "console_running": self.running, **acc}
