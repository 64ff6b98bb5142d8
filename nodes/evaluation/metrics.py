"""Accuracy bookkeeping for classifier decisions (thesis 3.3.1: online error over a sliding window).

The ``Evaluator`` is fed ``prediction_dtype`` records; it keeps only decision records
(``decision == 1``) with a known truth (``truth >= 0``) and ignores everything else (running
predictions, segments of unknown class). Training decisions (``train == 1``) form the prequential
online-accuracy curve: each one is a prediction made *before* the classifier learned from that
segment's label. Evaluation decisions (``train == 0``) give the test accuracy and the confusion matrix.
A prediction of -1 (no decision: no input in the segment) counts as wrong and goes to the last,
"none", column of the confusion matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of equal entries; NaN for empty input."""
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    if predicted.shape != truth.shape:
        msg = f"predicted has shape {predicted.shape}, truth {truth.shape}; they must match"
        raise ValueError(msg)
    if predicted.size == 0:
        return float("nan")
    return float(np.mean(predicted == truth))


def confusion_matrix(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, shape (n_classes, n_classes + 1): rows truth, columns prediction, last column = -1."""
    predicted = np.asarray(predicted, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    if predicted.shape != truth.shape:
        msg = f"predicted has shape {predicted.shape}, truth {truth.shape}; they must match"
        raise ValueError(msg)
    if truth.size and (truth.min() < 0 or truth.max() >= n_classes):
        msg = f"truth values must be in [0, {n_classes - 1}], got {truth.min()}..{truth.max()}"
        raise ValueError(msg)
    if predicted.size and (predicted.min() < -1 or predicted.max() >= n_classes):
        msg = f"predictions must be in [-1, {n_classes - 1}], got {predicted.min()}..{predicted.max()}"
        raise ValueError(msg)
    cols = np.where(predicted < 0, n_classes, predicted)
    out = np.zeros((n_classes, n_classes + 1), dtype=np.int64)
    np.add.at(out, (truth, cols), 1)
    return out


class Evaluator:
    """Running accuracy of a classifier's decisions.

    ``window``: length of the sliding window of the online training curve (thesis: 1000 examples).
    ``curve_every``: a curve point ``(samples, window accuracy, cumulative accuracy)`` is recorded
    after every ``curve_every``-th training decision.
    """

    def __init__(self, *, n_classes: int, window: int = 1000, curve_every: int = 100) -> None:
        if n_classes < 1:
            msg = f"n_classes must be >= 1, got {n_classes}"
            raise ValueError(msg)
        if window < 1:
            msg = f"window must be >= 1, got {window}"
            raise ValueError(msg)
        if curve_every < 1:
            msg = f"curve_every must be >= 1, got {curve_every}"
            raise ValueError(msg)
        self.n_classes = n_classes
        self.window = window
        self.curve_every = curve_every
        self._train_correct = np.zeros(0, dtype=bool)
        self._test_pred: list[np.ndarray] = []
        self._test_truth: list[np.ndarray] = []
        self._curve: list[tuple[int, float, float]] = []

    def update(self, records: np.ndarray) -> None:
        """Take a batch of prediction records (any mix of running and decision records)."""
        names = records.dtype.names or ()
        if not {"label", "truth", "decision", "train"} <= set(names):
            msg = f"records must have a prediction dtype, got fields {names}"
            raise ValueError(msg)
        if "scores" in names and records.dtype["scores"].shape[0] != self.n_classes:
            msg = f"predictions of {records.dtype['scores'].shape[0]} classes reach an evaluator of {self.n_classes}"
            raise ValueError(msg)
        dec = records[(records["decision"] == 1) & (records["truth"] >= 0)]
        # refused here, batch by batch, so that a bad batch never reaches the figures kept so far
        if dec.size and (dec["truth"].max() >= self.n_classes or dec["label"].max() >= self.n_classes):
            msg = (
                f"decisions for classes up to {max(int(dec['truth'].max()), int(dec['label'].max()))} reach an "
                f"evaluator of {self.n_classes} classes (0..{self.n_classes - 1})"
            )
            raise ValueError(msg)
        train = dec[dec["train"] == 1]
        test = dec[dec["train"] == 0]
        if len(test):
            self._test_pred.append(test["label"].astype(np.int64))
            self._test_truth.append(test["truth"].astype(np.int64))
        if len(train) == 0:
            return
        start = len(self._train_correct)
        self._train_correct = np.concatenate([self._train_correct, train["label"] == train["truth"]])
        csum = np.concatenate([[0], np.cumsum(self._train_correct, dtype=np.int64)])
        first = (start // self.curve_every + 1) * self.curve_every
        for n in range(first, len(self._train_correct) + 1, self.curve_every):
            lo = max(0, n - self.window)
            self._curve.append((n, float((csum[n] - csum[lo]) / (n - lo)), float(csum[n] / n)))

    def state(self) -> dict[str, np.ndarray]:
        """Everything measured so far, as arrays (for checkpoints)."""
        pred, truth = self._test_arrays()
        curve = np.array(self._curve, dtype=np.float64).reshape(-1, 3)
        return {"train_correct": self._train_correct.copy(), "test_pred": pred, "test_truth": truth, "curve": curve}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`state`'s arrays."""
        self._train_correct = np.asarray(state["train_correct"], dtype=bool).copy()
        self._test_pred = [np.asarray(state["test_pred"], dtype=np.int64)]
        self._test_truth = [np.asarray(state["test_truth"], dtype=np.int64)]
        self._curve = [(int(n), float(w), float(c)) for n, w, c in np.asarray(state["curve"]).reshape(-1, 3)]

    @property
    def train_samples(self) -> int:
        """Training decisions counted so far."""
        return len(self._train_correct)

    @property
    def test_samples(self) -> int:
        """Test decisions counted so far."""
        return int(sum(len(p) for p in self._test_pred))

    def curve_since(self, start: int) -> list[tuple[int, float, float]]:
        """The curve points from the ``start``-th on: ``(samples, window accuracy, cumulative accuracy)``."""
        return self._curve[start:]

    def train_accuracy(self) -> float:
        """Cumulative prequential accuracy over every training decision (NaN when none)."""
        return float(self._train_correct.mean()) if len(self._train_correct) else float("nan")

    def train_accuracy_between(self, start: int, stop: int) -> float:
        """Accuracy over training decisions ``start .. stop-1`` (NaN when none)."""
        part = self._train_correct[start:stop]
        return float(part.mean()) if len(part) else float("nan")

    def window_accuracy(self) -> float:
        """Accuracy over the last ``window`` training decisions (NaN when none)."""
        last = self._train_correct[-self.window :]
        return float(last.mean()) if len(last) else float("nan")

    def _test_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._test_pred:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(self._test_pred), np.concatenate(self._test_truth)

    def test_accuracy(self) -> float:
        """Accuracy over every evaluation decision (NaN when none)."""
        return accuracy(*self._test_arrays())

    def test_accuracy_between(self, start: int, stop: int) -> float:
        """Accuracy over evaluation decisions ``start .. stop-1`` (NaN when none)."""
        pred, truth = self._test_arrays()
        return accuracy(pred[start:stop], truth[start:stop])

    def confusion(self) -> np.ndarray:
        """Confusion matrix of the evaluation decisions: (n_classes, n_classes + 1), last column -1."""
        pred, truth = self._test_arrays()
        return confusion_matrix(pred, truth, self.n_classes)

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary; accuracies are None when there was nothing to measure."""

        def num(x: float) -> float | None:
            return None if np.isnan(x) else x

        return {
            "train_accuracy": num(self.train_accuracy()),
            "window_accuracy": num(self.window_accuracy()),
            "test_accuracy": num(self.test_accuracy()),
            "samples": {"train": self.train_samples, "test": self.test_samples},
            "confusion": self.confusion().tolist(),
            "confusion_columns": [*range(self.n_classes), "none"],
            "curve": [list(p) for p in self._curve],
            "window": self.window,
        }
