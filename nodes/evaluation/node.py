"""Evaluation stage: measures the classifier's decisions and forwards every prediction downstream.

Online (prequential) training accuracy: each training segment is predicted before the classifier has
learnt from its end; test accuracy over evaluation-only segments, with a confusion matrix. The figures
(``train_accuracy``, ``window_accuracy``, ``test_accuracy``, ``samples``, ``confusion``, ``curve``) go
into the results file, with ``phases_evaluated``: decisions and training accuracy per phase of the stream
(a phase begins where the source switches the classifier's learning). The running accuracy is logged
every ``log_every`` decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.message import FREEZE, PREDICTIONS, RELABEL, UNFREEZE, Message
from pipeline.node import Node, NodeContext

from .metrics import Evaluator

#: A listener of the learning curve: called as ``listener(node, samples, window_accuracy, train_accuracy)``
#: for each new curve point of an evaluate node running in this process.
CurveListener = Callable[[str, int, float, float], None]

#: The listeners that every evaluate node of this process calls while it learns: how a sweep trial, which
#: runs its graph in process, reports the prequential curve to an early-stopping scheduler without a sink of
#: its own in the graph. Empty: nothing is called.
curve_listeners: list[CurveListener] = []


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
    config: EvaluationConfig

    @classmethod
    @override
    def stream_facts(cls, config: EvaluationConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        classes = received.get("classes")
        if classes is not None and classes != config.classes:
            msg = f"decisions over {classes} classes, but classes = {config.classes}"
            raise ValueError(msg)
        return received

    def __init__(self, name: str, config: EvaluationConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.ev = Evaluator(n_classes=config.classes, window=config.window, curve_every=config.curve_every)
        self._next_log = config.log_every
        self._phase_starts = [(0, 0)]  # (training decisions, test decisions) when each phase began
        self._told = 0  # curve points given to the curve listeners

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == PREDICTIONS and msg.data is not None:
            self.ev.update(msg.data)
            if curve_listeners:
                self._tell_listeners()
            done = self.ev.train_samples + self.ev.test_samples
            if self.config.log_every and done >= self._next_log:
                self._next_log = done + self.config.log_every
                self.log.info("%s: %s", self.name, self.describe())
        return (msg,)

    def _tell_listeners(self) -> None:
        """Give the new curve points to every curve listener."""
        points = self.ev.curve_since(self._told)
        self._told += len(points)
        for samples, window, cumulative in points:
            for listener in curve_listeners:
                listener(self.name, int(samples), window, cumulative)

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        # the sources switch the classifier's learning at every phase start: mark a phase boundary there
        if msg.command in (FREEZE, UNFREEZE, RELABEL) and (msg.body or {}).get("scope") == "classifier":
            mark = (self.ev.train_samples, self.ev.test_samples)
            if mark != self._phase_starts[-1]:
                self._phase_starts.append(mark)
        return ()

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        return self.ev.state() | {"phase_starts": np.array(self._phase_starts, dtype=np.int64).reshape(-1, 2)}

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.ev.load(state)
        self._phase_starts = [(int(a), int(b)) for a, b in state["phase_starts"]]
        self._told = len(self.ev.curve_since(0))  # those were told before the checkpoint
        done = self.ev.train_samples + self.ev.test_samples
        self._next_log = done + self.config.log_every

    def phases(self) -> list[dict[str, Any]]:
        """Per phase: how many training and test decisions, and the accuracy of each within it (a validation
        phase and a test phase in one run are told apart here; ``test_accuracy`` pools them)."""
        bounds = [*self._phase_starts, (self.ev.train_samples, self.ev.test_samples)]
        out = []
        for (tr0, te0), (tr1, te1) in pairwise(bounds):
            train = self.ev.train_accuracy_between(tr0, tr1)
            test = self.ev.test_accuracy_between(te0, te1)
            out.append(
                {
                    "train": tr1 - tr0,
                    "test": te1 - te0,
                    "train_accuracy": None if train != train else train,
                    "test_accuracy": None if test != test else test,
                }
            )
        return out

    def describe(self) -> str:
        """One line of the accuracies so far, for the log."""
        s = self.ev.summary()

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.1f} %"

        return (
            f"train {s['samples']['train']} samples, online accuracy {pct(s['train_accuracy'])} "
            f"(last {self.config.window}: {pct(s['window_accuracy'])}); "
            f"test {s['samples']['test']} samples, accuracy {pct(s['test_accuracy'])}"
        )

    @override
    async def flush(self) -> Sequence[Message]:
        self.log.info("%s: final: %s", self.name, self.describe())
        return ()

    @override
    def results(self) -> dict[str, Any]:
        phases = self.phases()
        out = self.ev.summary() | {"phases_evaluated": phases}
        evaluated = [(n, p) for n, p in enumerate(phases, 1) if p["test"]]
        if len(evaluated) > 1:  # a validation phase and a test phase: the pooled figure alone would mislead
            out["summary"] = [
                f"phase {n}: {p['test']:,} evaluation decisions, accuracy {100 * p['test_accuracy']:.2f} %"
                for n, p in evaluated
            ]
        return out
