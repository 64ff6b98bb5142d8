"""Messages: what nodes exchange. A message is a kind, a typed record batch and a small header."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .events import EVENT_DTYPE, LABEL_DTYPE, SPIKE_DTYPE, prediction_dtype

EVENTS = "events"
SPIKES = "spikes"
LABELS = "labels"
PREDICTIONS = "predictions"
CONTROL = "control"
METRICS = "metrics"

#: Every kind, with the dtype of its payload (``None``: no payload; predictions depend on the class count).
KINDS: dict[str, np.dtype | None] = {
    EVENTS: EVENT_DTYPE,
    SPIKES: SPIKE_DTYPE,
    LABELS: LABEL_DTYPE,
    PREDICTIONS: None,
    CONTROL: None,
    METRICS: None,
}

#: Control commands. ``eos`` (end of stream) travels through the whole graph; the others are handed to
#: every node on the way (a node ignores what does not concern it) and forwarded downstream. A
#: ``freeze``/``unfreeze`` may carry ``body = {"scope": ROLE}``: only nodes of that role act on it
#: (e.g. "features" or "classifier"); without a scope every node that learns acts on it.
EOS = "eos"
FREEZE = "freeze"
UNFREEZE = "unfreeze"
CHECKPOINT = "checkpoint"
#: Readouts that label neurons from their responses forget those labels and start labelling anew (the
#: thesis labels its top neurons in a pass after training); learned features are never touched.
RELABEL = "relabel"
CONTROL_COMMANDS = (EOS, FREEZE, UNFREEZE, CHECKPOINT, RELABEL)


@dataclass(frozen=True, slots=True)
class Message:
    """One message. ``data`` is a structured array of the kind's dtype (``None`` for control/metrics).

    ``stream`` and ``seq`` are stamped by the runtime when the message leaves a node; ``created_ns``
    (wall clock, ns) is set where the data was created at the source and carried through the graph (a
    stage's outputs inherit it from their input) so that every node can measure its end-to-end latency.
    """

    kind: str
    data: np.ndarray | None = None
    stream: str = ""
    seq: int = -1
    width: int | None = None
    height: int | None = None
    created_ns: int = 0
    command: str | None = None
    body: dict[str, Any] | None = None

    @property
    def count(self) -> int:
        """Records in ``data`` (0 for control and metrics messages)."""
        return 0 if self.data is None else int(self.data.shape[0])

    @property
    def is_eos(self) -> bool:
        """Whether this is the end-of-stream control message."""
        return self.kind == CONTROL and self.command == EOS

    def stamped(self, stream: str, seq: int, origin_ns: int = 0) -> Message:
        """A copy sent by ``stream`` as its message ``seq``. ``origin_ns`` is the ``created_ns`` of the input it
        was computed from (0 at a source). The earlier of the two stamps is kept: a stage's new message
        counts from its input's source, an output finished late for an earlier input keeps its own; a
        message with neither is stamped now."""
        stamps = [ns for ns in (origin_ns, self.created_ns) if ns]
        # built directly: dataclasses.replace costs ~20 µs, which shows at small batch sizes
        return Message(
            self.kind,
            self.data,
            stream,
            seq,
            self.width,
            self.height,
            min(stamps) if stamps else time.time_ns(),
            self.command,
            self.body,
        )


def applies_to(msg: Message, role: str) -> bool:
    """Whether control message ``msg`` concerns a node of ``role`` (no scope: every node)."""
    scope = (msg.body or {}).get("scope")
    return scope is None or scope == role


def events_message(events: np.ndarray, width: int | None = None, height: int | None = None) -> Message:
    """An ``events`` message of a batch of ``EVENT_DTYPE`` records, on a ``width`` x ``height`` sensor
    when known; its ``created_ns`` is now, the start of the latency the graph measures."""
    if events.dtype != EVENT_DTYPE:
        msg = f"events must have dtype EVENT_DTYPE, got {events.dtype}"
        raise ValueError(msg)
    return Message(EVENTS, events, width=width, height=height, created_ns=time.time_ns())


def spikes_message(spikes: np.ndarray, width: int | None = None, height: int | None = None) -> Message:
    """A ``spikes`` message of ``SPIKE_DTYPE`` records, between network stages."""
    if spikes.dtype != SPIKE_DTYPE:
        msg = f"spikes must have dtype SPIKE_DTYPE, got {spikes.dtype}"
        raise ValueError(msg)
    return Message(SPIKES, spikes, width=width, height=height)


def labels_message(labels: np.ndarray) -> Message:
    """A ``labels`` message: from each record's ``t`` on, the scene shows its ``label``."""
    if labels.dtype != LABEL_DTYPE:
        msg = f"labels must have dtype LABEL_DTYPE, got {labels.dtype}"
        raise ValueError(msg)
    return Message(LABELS, labels)


def predictions_message(predictions: np.ndarray) -> Message:
    """A ``predictions`` message of records of ``prediction_dtype(classes)``."""
    fields: dict[str, Any] = dict(predictions.dtype.fields or {})
    if "scores" not in fields or predictions.dtype != prediction_dtype(fields["scores"][0].shape[0]):
        msg = f"predictions must have a prediction_dtype(classes) dtype, got {predictions.dtype}"
        raise ValueError(msg)
    return Message(PREDICTIONS, predictions)


def control_message(command: str, **body: Any) -> Message:
    """A control message ``command`` (one of ``CONTROL_COMMANDS``) with ``body`` as its parameters."""
    if command not in CONTROL_COMMANDS:
        msg = f"unknown control command {command!r}; known: {', '.join(CONTROL_COMMANDS)}"
        raise ValueError(msg)
    return Message(CONTROL, command=command, body=body or None, created_ns=time.time_ns())


def metrics_message(body: dict[str, Any]) -> Message:
    """A ``metrics`` message carrying ``body`` (plain JSON values) and no payload."""
    return Message(METRICS, body=body, created_ns=time.time_ns())
