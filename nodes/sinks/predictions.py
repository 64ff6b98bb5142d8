"""What every prediction sink shares: which messages it takes, which records it emits, and their JSON form.

Every sink takes ``predictions`` messages (records of ``pipeline.events.prediction_dtype``) and ignores
any other kind, counting it. Prediction records leave the pipeline as one JSON object each, the same in
every sink::

    {"seq": 17, "t": 1234567, "label": 3, "truth": 3, "decision": true, "train": false,
     "scores": [0.0, 1.5, ...]}

``seq`` counts the prediction records a sink has emitted (from 0; a consumer can spot duplicates and
gaps with it), ``t`` is the stream time of the record in microseconds, ``label`` the predicted class (-1:
none), ``truth`` the segment's label for a decision (-1 otherwise), ``decision`` whether the record is the
final decision of a labelled segment (else a running prediction), ``scores`` the classifier's per-class
scores (in its own units; rounded to 6 decimals).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

PREDICTION_FIELDS = ("t", "label", "truth", "decision", "train", "scores")


def check_predictions(records: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``records`` is a 1-d structured array with the prediction fields."""
    names = records.dtype.names or ()
    missing = [f for f in PREDICTION_FIELDS if f not in names]
    if missing or records.ndim != 1:
        msg = (
            f"predictions must be a 1-d array of prediction_dtype records; got dtype {records.dtype} "
            f"with shape {records.shape} (missing fields: {', '.join(missing) or 'none'})"
        )
        raise ValueError(msg)


def select(records: np.ndarray, which: str) -> np.ndarray:
    """The records a sink emits: ``"all"``, or only ``"decisions"`` (``decision == 1``)."""
    if which == "all":
        return records
    if which == "decisions":
        decisions: np.ndarray = records[records["decision"] == 1]
        return decisions
    msg = f"which must be 'all' or 'decisions', got {which!r}"
    raise ValueError(msg)


def prediction_dicts(records: np.ndarray, first_seq: int) -> list[dict[str, Any]]:
    """One plain dict per record (JSON-ready), numbered from ``first_seq``.

    Column-wise ``tolist`` then a zip: about ten times faster than touching numpy scalars record by
    record."""
    if records.shape[0] == 0:
        return []
    scores = np.round(np.asarray(records["scores"], dtype=np.float64), 6)
    cols = zip(
        records["t"].tolist(),
        records["label"].tolist(),
        records["truth"].tolist(),
        records["decision"].tolist(),
        records["train"].tolist(),
        scores.tolist(),
        strict=True,
    )
    return [
        {"seq": first_seq + i, "t": t, "label": lab, "truth": tr, "decision": bool(d), "train": bool(tn), "scores": s}
        for i, (t, lab, tr, d, tn, s) in enumerate(cols)
    ]


def to_json(obj: dict[str, Any]) -> str:
    """Compact JSON (no spaces), as every sink writes it."""
    return json.dumps(obj, separators=(",", ":"))


class KindCounter:
    """Counts the messages a sink received but does not handle, by kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        """Count one message of ``kind``."""
        self.counts[kind] += 1

    def as_dict(self) -> dict[str, int]:
        """The counts by kind, sorted by name (for the results file)."""
        return dict(sorted(self.counts.items()))
