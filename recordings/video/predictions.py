"""What the classifier thought, over time: the prediction records (and labels) a video draws over the events.

Read from a message log (the ``record`` sink's, holding ``predictions`` and ``labels`` messages), from the
JSON-lines file of the ``jsonl`` sink, or made by running a saved network (``recordings.video.network``).
A run's ``--results`` document holds accuracies, not predictions over time: it gives the caption.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import LABEL_DTYPE, prediction_dtype
from pipeline.message import LABELS, PREDICTIONS
from recordings.messages import TruncatedLogError, is_message_log, read_messages


@dataclass(frozen=True, kw_only=True)
class Shown:
    """What a frame shows of the predictions at its end time."""

    label: int  #: the latest predicted class (-1: none yet)
    scores: np.ndarray  #: that record's per-class scores, scaled to 0..1 over the whole track
    truth: int  #: the scene's label where known (a label segment, or the latest decision's truth), else -1
    decision: int  #: the latest final decision (-1: none yet)
    decision_truth: int  #: that decision's truth (-1: unknown)


class PredictionTrack:
    """Prediction records (``prediction_dtype``) and label segments (``LABEL_DTYPE``) in time order, and what
    is current at a given time (``at``)."""

    def __init__(self, records: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.records = records[np.argsort(records["t"], kind="stable")]
        self.labels = np.zeros(0, LABEL_DTYPE) if labels is None else labels[np.argsort(labels["t"], kind="stable")]
        self.classes = int(records.dtype["scores"].shape[0])
        decided = self.records["decision"] == 1
        self._decisions = self.records[decided]
        scores = np.asarray(self.records["scores"], dtype=np.float64)
        self._lo = min(0.0, float(scores.min(initial=0.0)))
        hi = float(scores.max(initial=0.0))
        self._span = hi - self._lo if hi > self._lo else 1.0

    def __len__(self) -> int:
        return int(self.records.shape[0])

    def at(self, t: float) -> Shown:
        """What is current just before ``t`` (µs): the last record, decision and label segment before it."""
        i = int(np.searchsorted(self.records["t"], t, side="left")) - 1
        j = int(np.searchsorted(self._decisions["t"], t, side="left")) - 1
        s = int(np.searchsorted(self.labels["t"], t, side="left")) - 1
        if i >= 0:
            rec = self.records[i]
            label = int(rec["label"])
            scores = (np.asarray(rec["scores"], dtype=np.float64) - self._lo) / self._span
        else:
            label, scores = -1, np.zeros(self.classes)
        decision = int(self._decisions["label"][j]) if j >= 0 else -1
        decision_truth = int(self._decisions["truth"][j]) if j >= 0 else -1
        truth = int(self.labels["label"][s]) if s >= 0 else decision_truth
        return Shown(label=label, scores=scores, truth=truth, decision=decision, decision_truth=decision_truth)


def from_message_log(path: Path, shift: int = 0) -> PredictionTrack | None:
    """The predictions and labels of a message log (``None`` when it holds no predictions), their times
    moved by ``shift`` µs; a log cut short gives what it holds up to the cut."""
    preds: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    try:
        for message in read_messages(path):
            if message.kind == PREDICTIONS and message.data is not None and message.count:
                preds.append(message.data)
            elif message.kind == LABELS and message.data is not None and message.count:
                labels.append(message.data)
    except TruncatedLogError:
        pass
    if not preds:
        return None
    dtypes = {p.dtype for p in preds}
    if len(dtypes) > 1:
        msg = f"{path}: predictions of different class counts ({sorted(d['scores'].shape[0] for d in dtypes)})"
        raise RecordingError(msg)
    records = np.concatenate(preds)
    records["t"] += shift
    label_records = np.concatenate(labels) if labels else None
    if label_records is not None:
        label_records["t"] += shift
    return PredictionTrack(records, label_records)


def from_json_lines(path: Path) -> PredictionTrack:
    """The records of a ``jsonl`` sink's file (a line cut short by a crash is skipped, as a reader of a
    live file must; any other bad line is an error naming the line)."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append({k: row[k] for k in ("t", "label", "truth", "decision", "scores")})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            if n == len(lines):  # the last line, without its newline: cut short mid-write
                break
            msg = f"{path} line {n}: not a prediction record of the jsonl sink ({exc})"
            raise RecordingError(msg) from None
    if not rows:
        msg = f"{path}: holds no prediction records"
        raise RecordingError(msg)
    classes = len(rows[0]["scores"])
    if classes < 1 or any(len(r["scores"]) != classes for r in rows):
        msg = f"{path}: records with different numbers of scores"
        raise RecordingError(msg)
    out = np.zeros(len(rows), dtype=prediction_dtype(classes))
    out["t"] = [r["t"] for r in rows]
    out["label"] = [r["label"] for r in rows]
    out["truth"] = [r["truth"] for r in rows]
    out["decision"] = [bool(r["decision"]) for r in rows]
    out["scores"] = [r["scores"] for r in rows]
    return PredictionTrack(out)


def load_predictions(path: str | Path) -> PredictionTrack:
    """The predictions of ``path``: a message log or a ``jsonl`` sink's file (told apart by content)."""
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file (give a message log of a 'record' sink, or a 'jsonl' sink's file)"
        raise RecordingError(msg)
    if is_message_log(path):
        track = from_message_log(path)
        if track is None:
            msg = f"{path}: a message log without predictions (record the classifier's output to draw them)"
            raise RecordingError(msg)
        return track
    return from_json_lines(path)


def results_caption(path: str | Path) -> str:
    """One line of a run's results document (``spikestream run --results``): its accuracies."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path}: not a results document of `spikestream run --results` ({exc})"
        raise RecordingError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{path}: not a results document of `spikestream run --results` (not a JSON object)"
        raise RecordingError(msg)
    parts = [
        f"{name} {100 * float(doc[key]):.1f} %"
        for key, name in (("train_accuracy", "online accuracy"), ("test_accuracy", "test accuracy"))
        if isinstance(doc.get(key), int | float)
    ]
    graph = doc.get("graph")
    head = f"{graph}: " if isinstance(graph, str) else ""
    return head + (", ".join(parts) if parts else "no accuracies")
