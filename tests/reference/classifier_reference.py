"""Slow, obviously correct references of the two classifiers, over whole streams at once.

Written straight from the semantics in ``nodes/classifier/readout.py`` (and the input contract in
``labelled.py``) with Python lists and floats:
merge labels and spikes (label first at equal ``t``), then walk the merged stream one item at a time.
Returns the output records as tuples ``(t, label, truth, decision, train, scores tuple)``.
"""

from __future__ import annotations

import numpy as np


def _merged(spikes: np.ndarray, labels: np.ndarray) -> list[tuple[str, int, int, int]]:
    """Labels and spikes as one list in processing order: by t, a label before a spike at equal t."""
    items = [("label", int(r["t"]), int(r["label"]), int(r["train"])) for r in labels]
    items += [("spike", int(s["t"]), int(s["c"]), 0) for s in spikes]
    order = {"label": 0, "spike": 1}
    # stable sort keeps each stream's own order
    return sorted(items, key=lambda it: (it[1], order[it[0]]))


def _argmax(values: list[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def supervised_reference(
    spikes: np.ndarray,
    labels: np.ndarray,
    w0: np.ndarray,
    *,
    threshold: float,
    eta: float,
    m: float,
    learn: bool = True,
) -> tuple[list[tuple], np.ndarray]:
    """Whole-stream run of the supervised classifier, ending with a flush. Returns (records, w)."""
    n_cls, n_in = w0.shape
    w = [[float(w0[i, j]) for j in range(n_in)] for i in range(n_cls)]
    w_open = [row[:] for row in w]  # the weights as the current segment opened: the scores use these
    e = [0.0] * n_cls
    v = [0.0] * n_cls
    score = [0.0] * n_cls
    seg_label, seg_train, seg_open, seg_inputs = -1, 0, False, 0
    last_t = None
    out: list[tuple] = []

    def close(t: int) -> None:
        if seg_open:
            pred = _argmax(score) if seg_inputs > 0 else -1
            out.append((t, pred, seg_label, 1, seg_train, tuple(np.float32(s) for s in score)))

    for kind, t, a, b in _merged(spikes, labels):
        if kind == "label":
            close(t)
            if seg_train == 1:
                w_open = [row[:] for row in w]
            if b == 1 and (a != seg_label or seg_train != 1):
                e = [0.0] * n_cls
                v = [0.0] * n_cls
            seg_label, seg_train, seg_open, seg_inputs = a, b, True, 0
            score = [0.0] * n_cls
            last_t = t if last_t is None else max(last_t, t)
            continue
        j = a
        teach = learn and seg_train == 1 and seg_label >= 0
        if teach:
            for i in range(n_cls):
                w[i][j] = w[i][j] + eta * e[i]
        for i in range(n_cls):
            v[i] = v[i] + w[i][j]
            score[i] = score[i] + w_open[i][j]
        seg_inputs += 1
        last_t = t
        fired = [k for k in range(n_cls) if v[k] >= threshold]
        for k in fired:
            v[k] = 0.0
        for k in fired:
            if teach:
                e = [m * e[i] + (1.0 if i == seg_label else 0.0) - (1.0 if i == k else 0.0) for i in range(n_cls)]
        if fired:
            out.append((t, _argmax(score), -1, 0, seg_train, tuple(np.float32(s) for s in score)))
    if last_t is not None:
        close(last_t)
    return out, np.array(w)


def readout_reference(
    spikes: np.ndarray, labels: np.ndarray, n_classes: int, n_inputs: int, *, learn: bool = True
) -> tuple[list[tuple], np.ndarray]:
    """Whole-stream run of the label-assignment readout, ending with a flush. Returns (records, counts)."""
    counts = [[0] * n_classes for _ in range(n_inputs)]
    seg: dict[int, int] = {}
    seg_label, seg_train, seg_open = -1, 0, False
    last_t = None
    out: list[tuple] = []

    def preferred(j: int) -> int:
        row = counts[j]
        return -1 if max(row) == 0 else row.index(max(row))

    def close(t: int) -> None:
        if not seg_open:
            return
        scores = [0.0] * n_classes
        pred = -1
        if seg:
            top = max(seg.values())
            winner = min(j for j, n in seg.items() if n == top)
            for j, n in seg.items():
                if preferred(j) >= 0:
                    scores[preferred(j)] += n
            pred = preferred(winner)
        out.append((t, pred, seg_label, 1, seg_train, tuple(np.float32(s) for s in scores)))
        if learn and seg and seg_train == 1 and seg_label >= 0:
            counts[winner][seg_label] += 1

    for kind, t, a, b in _merged(spikes, labels):
        if kind == "label":
            close(t)
            seg_label, seg_train, seg_open = a, b, True
            seg = {}
            last_t = t if last_t is None else max(last_t, t)
        else:
            seg[a] = seg.get(a, 0) + 1
            last_t = t
    if last_t is not None:
        close(last_t)
    return out, np.array(counts, dtype=np.int64)


def delta_reference(
    spikes: np.ndarray, labels: np.ndarray, n_classes: int, n_inputs: int, *, eta: float, learn: bool = True
) -> tuple[list[tuple], np.ndarray]:
    """Whole-stream run of the delta-rule readout, ending with a flush. Returns (records, w)."""
    w = [[0.0] * n_inputs for _ in range(n_classes)]
    counts: dict[int, int] = {}
    score = [0.0] * n_classes
    seg_label, seg_train, seg_open, seg_inputs = -1, 0, False, 0
    last_t = None
    out: list[tuple] = []

    def close(t: int) -> None:
        if not seg_open:
            return
        pred = _argmax(score) if seg_inputs > 0 else -1
        out.append((t, pred, seg_label, 1, seg_train, tuple(np.float32(s) for s in score)))
        if learn and seg_train == 1 and 0 <= seg_label < n_classes and seg_inputs > 0:
            norm = float(sum(n * n for n in counts.values()))
            for i in range(n_classes):
                step = eta * ((1.0 if i == seg_label else 0.0) - score[i]) / norm
                for j in sorted(counts):
                    w[i][j] = w[i][j] + step * counts[j]

    for kind, t, a, b in _merged(spikes, labels):
        if kind == "label":
            close(t)
            seg_label, seg_train, seg_open, seg_inputs = a, b, True, 0
            counts, score = {}, [0.0] * n_classes
            last_t = t if last_t is None else max(last_t, t)
            continue
        counts[a] = counts.get(a, 0) + 1
        for i in range(n_classes):
            score[i] = score[i] + w[i][a]
        seg_inputs += 1
        last_t = t
    if last_t is not None:
        close(last_t)
    return out, np.array(w)
