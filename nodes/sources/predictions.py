"""``type = "prediction-replay"``: hand-made prediction streams, for tests, benchmarks and trying a sink
without a trained network. A source: it emits prediction records as a classifier would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.events import prediction_dtype
from pipeline.message import Message, predictions_message
from pipeline.node import Source


def make_predictions(
    labels: Sequence[int] | np.ndarray,
    t: Sequence[int] | np.ndarray,
    *,
    classes: int = 10,
    score: float | Sequence[float] | np.ndarray = 1.0,
    decision: int | Sequence[int] | np.ndarray = 0,
    truth: int | Sequence[int] | np.ndarray = -1,
    train: int | Sequence[int] | np.ndarray = 0,
) -> np.ndarray:
    """Prediction records with ``scores[label] = score`` and every other score 0 (no score for label -1)."""
    labels = np.asarray(labels, dtype=np.int32)
    n = labels.shape[0]
    t = np.asarray(t, dtype=np.int64)
    if t.shape != (n,):
        msg = f"t has shape {t.shape}, expected ({n},) like labels"
        raise ValueError(msg)
    if n and (labels.min() < -1 or labels.max() >= classes):
        msg = f"labels must be in -1..{classes - 1}, got {labels.min()}..{labels.max()}"
        raise ValueError(msg)
    out = np.zeros(n, dtype=prediction_dtype(classes))
    out["t"] = t
    out["label"] = labels
    out["truth"] = truth
    out["decision"] = decision
    out["train"] = train
    rows = np.flatnonzero(labels >= 0)
    s = np.broadcast_to(np.asarray(score, dtype=np.float32), (n,))
    out["scores"][rows, labels[rows]] = s[rows]
    return out


@dataclass(frozen=True, kw_only=True)
class PredictionReplayParams:
    """A synthetic prediction stream: record ``i`` predicts ``labels[i % len(labels)]`` at ``t = i * dt_us``."""

    classes: int = 10  #: classes of the prediction records (>= 1)
    count: int = 100  #: records in total (>= 0)
    labels: tuple[int, ...] = (0, 1, 2)  #: predicted labels, cycled (each in -1..classes-1)
    dt_us: int = 1000  #: stream time between records, µs (>= 0)
    batch: int = 10  #: records per message (>= 1)
    decision_every: int = 0  #: every n-th record is a decision whose truth is its label (0: none)
    score: float = 1.0  #: ``scores[label]`` of every record
    rate: float = 0.0  #: records per second of wall time (0: as fast as the graph takes them)

    def __post_init__(self) -> None:
        if self.classes < 1 or self.count < 0 or self.batch < 1 or self.dt_us < 0 or self.rate < 0:
            msg = (
                f"need classes >= 1, count >= 0, batch >= 1, dt_us >= 0, rate >= 0; got {self.classes}, "
                f"{self.count}, {self.batch}, {self.dt_us}, {self.rate}"
            )
            raise ValueError(msg)
        if not self.labels or any(not -1 <= lab < self.classes for lab in self.labels):
            msg = f"labels must be a non-empty list of values in -1..{self.classes - 1}, got {self.labels}"
            raise ValueError(msg)
        if self.decision_every < 0:
            msg = f"decision_every must be >= 0, got {self.decision_every}"
            raise ValueError(msg)


def replay_records(p: PredictionReplayParams) -> np.ndarray:
    """Every record of the stream ``p`` describes."""
    i = np.arange(p.count, dtype=np.int64)
    labels = np.asarray(p.labels, dtype=np.int32)[i % len(p.labels)]
    decision = (i % p.decision_every == p.decision_every - 1) if p.decision_every else np.zeros(p.count, bool)
    truth = np.where(decision, labels, -1)
    return make_predictions(labels, i * p.dt_us, classes=p.classes, score=p.score, decision=decision, truth=truth)


class PredictionReplay(Source):
    """Emits the records of ``replay_records(config)`` in batches (optionally paced in wall time)."""

    Config = PredictionReplayParams
    config: PredictionReplayParams

    @override
    async def produce(self) -> AsyncIterator[Message]:
        p = self.config
        records = replay_records(p)
        t0 = time.perf_counter()
        for start in range(0, p.count, p.batch):
            if p.rate > 0:
                ahead = start / p.rate - (time.perf_counter() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            yield predictions_message(records[start : start + p.batch])
            await asyncio.sleep(0)

    @override
    def results(self) -> dict[str, Any]:
        return {"replay_records": self.config.count}
