"""Evaluation stage: measures the classifier's decisions and forwards every prediction downstream.

Online (prequential) training accuracy: each training segment is predicted before the classifier has
learnt from its end; test accuracy over evaluation-only segments, with a confusion matrix. The figures
(``train_accuracy``, ``window_accuracy``, ``test_accuracy``, ``samples``, ``confusion``, ``curve``) go
into the results file; the running accuracy is logged every ``log_every`` decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext

from .metrics import Evaluator


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """``classes``: number of classes. ``window``: sliding window of the training curve, in samples
    (thesis Fig. 3.6/3.9: 1000). ``curve_every``: one curve point every this many training decisions.
    ``log_every``: log the running accuracy every this many decisions (0 = never)."""

    classes: int = 10
    window: int = 1000
    curve_every: int = 100
    log_every: int = 500


class EvaluationNode(Node):
    """``type = "evaluate"``."""

    Config = EvaluationConfig

    def __init__(self, name: str, config: EvaluationConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.ev = Evaluator(n_classes=config.classes, window=config.window, curve_every=config.curve_every)
        self._next_log = config.log_every

    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == PREDICTIONS and msg.data is not None:
            self.ev.update(msg.data)
            done = self.ev.train_samples + self.ev.test_samples
            if self.config.log_every and done >= self._next_log:
                self._next_log = done + self.config.log_every
                self.log.info("%s: %s", self.name, self.describe())
        return (msg,)

    def describe(self) -> str:
        s = self.ev.summary()

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.1f} %"

        return (
            f"train {s['samples']['train']} samples, online accuracy {pct(s['train_accuracy'])} "
            f"(last {self.config.window}: {pct(s['window_accuracy'])}); "
            f"test {s['samples']['test']} samples, accuracy {pct(s['test_accuracy'])}"
        )

    async def flush(self) -> Sequence[Message]:
        self.log.info("%s: final: %s", self.name, self.describe())
        return ()

    def results(self) -> dict[str, Any]:
        return self.ev.summary()
