"""Actuator rules: publish a command when a class has been predicted steadily.

A rule (``[[nodes.NAME.rules]]`` of the MQTT sink) debounces the predicted label in stream time (record
``t``): it fires when the predicted label has been the rule's ``label`` with ``scores[label] >= min_score``
on every record for at least ``min_dwell_ms``; it fires once per such run (it re-arms when the label
changes or the score drops), and never twice within ``cooldown_ms``. Rules look at every record, running
predictions and decisions alike.

``debounce(rule, state, records)`` is a pure step over an explicit ``RuleState``: the same records give
the same firings however they are split into batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class ActuatorRule:
    """Publish ``payload`` to ``topic`` when class ``label`` has been predicted steadily (see the module)."""

    label: int  #: the class that triggers the rule (>= 0)
    topic: str  #: topic to publish to, as written (not prefixed)
    payload: str = "ON"  #: what to publish
    min_score: float = 0.0  #: the record's ``scores[label]`` must be at least this (classifier units)
    min_dwell_ms: float = 0.0  #: the label must have held this long in stream time, ms (>= 0)
    cooldown_ms: float = 0.0  #: no second firing within this much stream time after one, ms (>= 0)
    retain: bool = False  #: publish retained

    def __post_init__(self) -> None:
        if self.label < 0:
            msg = f"rule label must be >= 0, got {self.label}"
            raise ValueError(msg)
        if not self.topic or any(c in self.topic for c in "+#"):
            msg = f"rule topic must be a non-empty topic without wildcards, got {self.topic!r}"
            raise ValueError(msg)
        if self.min_dwell_ms < 0 or self.cooldown_ms < 0:
            msg = f"min_dwell_ms and cooldown_ms must be >= 0, got {self.min_dwell_ms}, {self.cooldown_ms}"
            raise ValueError(msg)


@dataclass
class RuleState:
    """Where a rule stands: start of the current qualifying run (stream µs, or ``None`` outside a run),
    whether it fired during this run, and when it last fired."""

    run_start_t: int | None = None
    fired_in_run: bool = False
    last_fire_t: int | None = None


def debounce(rule: ActuatorRule, state: RuleState, records: np.ndarray) -> list[int]:
    """Advance ``state`` over ``records`` (prediction records in stream order); return the indices of the
    records at which the rule fires. Mutates only ``state``."""
    fires: list[int] = []
    if records.shape[0] == 0:
        return fires
    scores = records["scores"]
    if rule.label >= scores.shape[1]:
        return fires  # a class the classifier does not have never fires
    dwell_us = rule.min_dwell_ms * 1000.0
    cooldown_us = rule.cooldown_ms * 1000.0
    qualifies = ((records["label"] == rule.label) & (scores[:, rule.label] >= rule.min_score)).tolist()
    # one pass of plain Python over the (few) prediction records: the state machine is sequential
    for i, (ok, t) in enumerate(zip(qualifies, records["t"].tolist(), strict=True)):
        if not ok:
            state.run_start_t = None
            state.fired_in_run = False
            continue
        if state.run_start_t is None:
            state.run_start_t = t
        if state.fired_in_run or t - state.run_start_t < dwell_us:
            continue
        if state.last_fire_t is not None and t - state.last_fire_t < cooldown_us:
            continue
        state.fired_in_run = True
        state.last_fire_t = t
        fires.append(i)
    return fires
