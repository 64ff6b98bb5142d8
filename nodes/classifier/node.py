"""Classifier stage: top-layer spikes and labels in, predictions out.

``readout = "supervised"``: the event-based supervised classifier (thesis 3.3.2, eqs. 3.5-3.7).
``readout = "assignment"``: the label-assignment spike-count readout (thesis 3.3.1).
``readout = "delta"``: a linear readout of each segment's spike counts, learnt online by the normalised
delta rule (not in the thesis; it reaches further on the same features, see benchmarks/RESULTS.md).
``readout = "eprop"``: LIF output neurons learning at every spike from eligibility traces and the error
of their filtered output spikes (e-prop; ``nodes.classifier.eprop``, rule in ``[nodes.classifier.eprop]``).
Labels messages are consumed (training labels teach, evaluation labels only delimit decisions);
predictions go out on classifier spikes (``running = true``) and as one decision per labelled segment.
``freeze``/``unfreeze`` control (scope "classifier" or none) switch learning off/on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from typing_extensions import override

from pipeline.errors import CheckpointError
from pipeline.events import SPIKE_DTYPE
from pipeline.message import (
    FREEZE,
    LABELS,
    RELABEL,
    SPIKES,
    UNFREEZE,
    Message,
    applies_to,
    predictions_message,
)
from pipeline.node import Node, NodeContext

from .eprop import EpropParams, EpropReadout, EpropRule
from .readout import (
    DeltaParams,
    DeltaReadout,
    LabelAssignmentReadout,
    ReadoutParams,
    SupervisedClassifier,
    SupervisedParams,
)

ROLE = "classifier"


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig:
    """``readout``: "supervised" (eqs. 3.5-3.7), "assignment" (spike-count label assignment), "delta"
    (a linear readout of each segment's spike counts learnt by the normalised delta rule; not the thesis's)
    or "eprop" (LIF neurons learning online from eligibility traces; not the thesis's).
    ``classes``: number of classes; ``inputs``: number of top-layer neurons (the STDP node's fc size).
    ``threshold``, ``eta``, ``m``, ``w_mean``, ``w_std``, ``seed``: the supervised classifier's parameters
    (see ``nodes.classifier.readout.SupervisedParams``; the thesis leaves them open, defaults are ours);
    ``eta`` is also the delta rule's step (``DeltaParams``: in (0, 2)) and, when set, the e-prop rule's
    learning rate; unset, each readout's default (supervised 0.01, delta 0.3, eprop ``eprop.eta``).
    ``eprop``: the e-prop readout's neurons and rule (``nodes.classifier.eprop.EpropRule``; its seed is ``seed``).
    ``running``: also emit a running prediction on every classifier spike (supervised and eprop).
    ``learning``: learn from the start (a checkpoint overrides it)."""

    readout: Literal["supervised", "assignment", "delta", "eprop"] = "supervised"
    classes: int = 10
    inputs: int = 1024
    threshold: float = 10.0
    eta: float | None = None
    m: float = 0.9
    w_mean: float = 0.5
    w_std: float = 0.1
    seed: int = 0
    eprop: EpropRule = field(default_factory=EpropRule)
    running: bool = True
    learning: bool = True


class ClassifierNode(Node):
    """Event-based classifier (``type = "classifier"``)."""

    Config = ClassifierConfig
    config: ClassifierConfig

    @classmethod
    @override
    def stream_facts(cls, config: ClassifierConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        shape = received.get("shape")
        if shape is not None and shape[0] != config.inputs:
            msg = f"spikes from {shape[0]} top-layer neurons, but inputs = {config.inputs}"
            raise ValueError(msg)
        classes = received.get("classes")
        if classes is not None and classes != config.classes:
            msg = f"labels of {classes} classes, but classes = {config.classes}"
            raise ValueError(msg)
        return {k: v for k, v in received.items() if k != "shape"} | {"classes": config.classes}

    def __init__(self, name: str, config: ClassifierConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.clf: SupervisedClassifier | LabelAssignmentReadout | DeltaReadout | EpropReadout
        if config.readout == "eprop":
            rule = config.eprop if config.eta is None else replace(config.eprop, eta=config.eta)
            self.clf = EpropReadout(
                EpropParams(n_classes=config.classes, n_inputs=config.inputs, seed=config.seed, rule=rule)
            )
        elif config.readout == "delta":
            delta = DeltaParams(n_classes=config.classes, n_inputs=config.inputs)
            self.clf = DeltaReadout(delta if config.eta is None else replace(delta, eta=config.eta))
        elif config.readout == "supervised":
            supervised = SupervisedParams(
                n_classes=config.classes,
                n_inputs=config.inputs,
                threshold=config.threshold,
                m=config.m,
                w_mean=config.w_mean,
                w_std=config.w_std,
                seed=config.seed,
            )
            self.clf = SupervisedClassifier(supervised if config.eta is None else replace(supervised, eta=config.eta))
        else:
            self.clf = LabelAssignmentReadout(ReadoutParams(n_classes=config.classes, n_inputs=config.inputs))
        if not config.learning:
            self.clf.freeze()
        #: decisions of this run: [no class, class 0, class 1, ...]
        self._decided = np.zeros(config.classes + 1, np.int64)

    @override
    def warm(self) -> None:
        self.clf.process(np.zeros(0, SPIKE_DTYPE))  # an empty batch changes nothing

    def _emit(self, records: np.ndarray) -> Sequence[Message]:
        decided = records["label"][records["decision"] == 1]
        if decided.shape[0]:
            self._decided += np.bincount(decided + 1, minlength=self.config.classes + 1)[: self.config.classes + 1]
        if not self.config.running:
            records = records[records["decision"] == 1]
        return (predictions_message(records),) if records.shape[0] else ()

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == LABELS and msg.data is not None:
            self.clf.add_labels(msg.data)
            return ()
        if msg.kind == SPIKES and msg.data is not None:
            return self._emit(self.clf.process(msg.data))
        return (msg,)

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        out: Sequence[Message] = ()
        if msg.command in (FREEZE, UNFREEZE, RELABEL) and applies_to(msg, ROLE):
            # A phase boundary ends the segment in progress: its decision leaves before the control
            # message does, so downstream counts it in the phase it belongs to, and a relabelling
            # phase does not start with the previous phase's last sample in its statistics.
            out = self._emit(self.clf.flush())
        if msg.command == RELABEL and applies_to(msg, ROLE) and isinstance(self.clf, LabelAssignmentReadout):
            self.clf.forget_assignments()
            self.log.info("%s: label assignments cleared; labelling anew", self.name)
        if msg.command in (FREEZE, UNFREEZE) and applies_to(msg, ROLE):
            if msg.command == FREEZE:
                self.clf.freeze()
            else:
                self.clf.unfreeze()
            self.log.info("%s: learning %s", self.name, "on" if self.clf.learning else "off")
        return out

    @override
    async def flush(self) -> Sequence[Message]:
        if self.interrupted:  # the stream goes on after a resume: keep the open segment and queued labels
            return ()
        return self._emit(self.clf.flush())

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.clf.state_dict().items()}

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        try:
            self.clf.load_state_dict(dict(state))
        except (ValueError, KeyError) as exc:
            raise CheckpointError(str(exc)) from None

    @override
    def watch(self, *, full: bool) -> dict[str, Any]:
        return {"learning": bool(self.clf.learning)}

    @override
    def results(self) -> dict[str, Any]:
        per_class = {str(k): int(n) for k, n in enumerate(self._decided[1:].tolist()) if n}
        return {
            "classifier": dict(self.clf.counters),
            "decisions_per_class": per_class,
            "decisions_none": int(self._decided[0]),
            "summary": [self._decisions_line(per_class)],
        }

    def _decisions_line(self, per_class: dict[str, int]) -> str:
        """``decisions per class: 3: 40, 7: 12 (52 in all)``, or why there were none."""
        total = int(self._decided.sum())
        if not total:
            return (
                "decisions: none: a decision is made per labelled segment and no labels arrived; teach it "
                "(docs/mqtt.md) for it to name what it sees"
            )
        counts = ", ".join(f"{k}: {n:,}" for k, n in per_class.items())
        none = f", no class {self._decided[0]:,}" if self._decided[0] else ""
        return f"decisions per class: {counts}{none} ({total:,} in all)"
