"""Numba kernels of the event-based classifiers (thesis 3.3.1 and 3.3.2).

Only ``@njit`` functions over plain arrays, scalars and tuples of them live here. The readouts in
``readout.py`` own the state arrays; their shared base in ``labelled.py`` validates input and turns
the plain output arrays into ``prediction_dtype`` records.

Every kernel walks the spikes of a batch in order and, before each spike, applies every queued label
record whose ``t`` is less than or equal to the spike's ``t`` (a label and a spike at the same time:
label first); that walk is written once, in ``_merge``. Scalar state lives in one int64 array
``istate`` indexed by the constants below, so the caller can checkpoint it as a plain array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

# Layout of the int64 scalar-state array the kernels share.
I_SEG_LABEL = 0  # label of the current segment (-1 = unknown), as given by the last label record
I_SEG_TRAIN = 1  # 1 when the current segment is a training segment
I_SEG_OPEN = 2  # 1 once a label record opened a segment (a decision is due when it closes)
I_SEG_INPUTS = 3  # input spikes received in the current segment
I_LAST_T = 4  # timestamp of the last input spike processed
I_N_INPUTS = 5  # input spikes processed since creation
I_N_OUTPUTS = 6  # classifier spikes (supervised) since creation
I_N_SEGMENTS = 7  # label records applied since creation
I_N_UPDATES = 8  # presynaptic weight-update events (eq. 3.6) since creation
I_N_RESETS = 9  # E/V resets caused by a label change
I_LAST_LABEL_T = 10  # timestamp of the last label record applied

ISTATE_SIZE = 11

INT64_MIN = np.iinfo(np.int64).min

# For the type checker only (numba ignores annotations): the input spikes (t, c), the queued label records
# (t, label, train), the output columns (t, label, truth, decision, train, scores), and each readout's own
# state tuple: its arrays, then its constants, then whether it learns.
Spikes = tuple[np.ndarray, np.ndarray]
Labels = tuple[np.ndarray, np.ndarray, np.ndarray]
Columns = tuple[np.ndarray, ...]
SupervisedState = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float, bool]
ReadoutState = tuple[np.ndarray, np.ndarray, np.ndarray, bool]
DeltaState = tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]


@njit(cache=True)
def new_istate() -> np.ndarray:
    """A fresh scalar-state array: no segment open, label unknown."""
    s = np.zeros(ISTATE_SIZE, dtype=np.int64)
    s[I_SEG_LABEL] = -1
    s[I_LAST_T] = INT64_MIN
    s[I_LAST_LABEL_T] = INT64_MIN
    return s


@njit(cache=True)
def _argmax_or_none(v: np.ndarray, has_input: bool) -> int:
    """Index of the largest value (lowest index on ties), -1 when there was no input."""
    if not has_input:
        return -1
    best = 0
    for i in range(1, v.shape[0]):
        if v[i] > v[best]:
            best = i
    return best


@njit(cache=True)
def _write_record(
    o: int, t: int, label: int, truth: int, decision: int, train: int, scores: np.ndarray, out: Columns
) -> int:
    """Write one prediction record at row ``o`` of the output columns ``out``; returns ``o + 1``.

    ``out`` is the tuple (t, label, truth, decision, train, scores) of preallocated columns.
    """
    out_t, out_label, out_truth, out_decision, out_train, out_scores = out
    out_t[o] = t
    out_label[o] = label
    out_truth[o] = truth
    out_decision[o] = decision
    out_train[o] = train
    for i in range(scores.shape[0]):
        out_scores[o, i] = scores[i]
    return o + 1


@njit(cache=True)
def _open_segment(t: int, label: int, train: int, istate: np.ndarray) -> None:
    """Start the segment a label record announces (the caller closed the previous one)."""
    istate[I_SEG_LABEL] = label
    istate[I_SEG_TRAIN] = train
    istate[I_SEG_OPEN] = 1
    istate[I_SEG_INPUTS] = 0
    istate[I_N_SEGMENTS] += 1
    istate[I_LAST_LABEL_T] = t


@njit(inline="always")
def _merge(
    spikes: Spikes,
    labels: Labels,
    istate: np.ndarray,
    final: bool,
    out: Columns,
    state: tuple[Any, ...],
    on_label: Callable[..., int],
    on_spikes: Callable[..., int],
    on_close: Callable[..., int],
) -> tuple[int, int]:
    """The walk every readout makes: ``spikes`` = ``(t, c)`` and the queued ``labels`` = ``(t, label,
    train)`` merged in time order, a label before a spike at the same ``t``, and the labels left after
    the last spike applied only when ``final``; returns ``(labels used, records written)``.

    ``on_spikes(lo, hi, spk_t, spk_c, state, istate, o, out)`` takes the spikes ``lo..hi-1`` (a run
    with no label between them), ``on_label(t, label, train, state, istate, o, out)`` applies a label
    record (closing the segment) and, when ``final``, ``on_close(t, state, istate, o, out)`` closes the
    last segment; each returns the next output row. ``state`` is the readout's own tuple of arrays and
    constants. Inlined into each readout's kernel, so the steps are compiled in place (a function passed
    as a value would keep the kernels out of numba's cache). Runs rather than single spikes, because
    unpacking ``state`` once per spike made the supervised kernel about twice as slow.
    """
    spk_t, spk_c = spikes
    lab_t, lab_label, lab_train = labels
    n_lab = lab_t.shape[0]
    n_spk = spk_t.shape[0]
    s = 0
    li = 0
    o = 0
    while True:
        end = s
        if li < n_lab:
            while end < n_spk and spk_t[end] < lab_t[li]:
                end += 1
        else:
            end = n_spk
        if end > s:
            o = on_spikes(s, end, spk_t, spk_c, state, istate, o, out)
            istate[I_SEG_INPUTS] += end - s
            istate[I_N_INPUTS] += end - s
            istate[I_LAST_T] = spk_t[end - 1]
            s = end
        if li < n_lab and (s < n_spk or final):
            o = on_label(lab_t[li], lab_label[li], lab_train[li], state, istate, o, out)
            li += 1
        else:
            break
    if final:
        o = on_close(max(istate[I_LAST_T], istate[I_LAST_LABEL_T]), state, istate, o, out)
        istate[I_SEG_OPEN] = 0
    return li, o


@njit(cache=True)
def supervised_run(
    spikes: Spikes, labels: Labels, state: SupervisedState, istate: np.ndarray, final: bool, out: Columns
) -> tuple[int, int]:
    """Run the supervised classifier (eqs. 3.6/3.7) over one batch of input spikes.

    ``state`` = ``(w, w_open, e, v, seg_scores, threshold, eta, m, learn)``: ``w`` (classes, inputs)
    float64, ``w_open`` (the weights as the current segment opened; the segment scores sum these),
    ``e``/``v``/``seg_scores`` (classes,) float64; they and ``istate`` are updated in place. ``labels`` are
    the queued label records; the first ``used`` of them are applied (all of them when ``final``, which
    also closes the last segment). The output columns ``out`` (see ``_write_record``) must hold one record
    per spike and label, plus one. Returns ``(used, n_out)``.
    """
    return _merge(
        spikes,
        labels,
        istate,
        final,
        out,
        state,
        _supervised_label,
        _supervised_spikes,
        _supervised_close,
    )


@njit(cache=True)
def _supervised_spikes(
    lo: int,
    hi: int,
    spk_t: np.ndarray,
    spk_c: np.ndarray,
    state: SupervisedState,
    istate: np.ndarray,
    o: int,
    out: Columns,
) -> int:
    """Input spikes ``lo..hi-1`` of one segment: eq. 3.6 (when teaching), integration, firing, eq. 3.7."""
    w, w_open, e, v, seg_scores, threshold, eta, m, learn = state
    n_cls = w.shape[0]
    label = istate[I_SEG_LABEL]
    teach = learn and istate[I_SEG_TRAIN] == 1 and label >= 0  # a run lies within one segment
    for s in range(lo, hi):
        t = spk_t[s]
        j = spk_c[s]
        if teach:
            # eq. 3.6: every synapse that carries a spike moves by eta * E_i
            for i in range(n_cls):
                w[i, j] += eta * e[i]
            istate[I_N_UPDATES] += 1
        for i in range(n_cls):
            v[i] += w[i, j]
            seg_scores[i] += w_open[i, j]  # the decision is made with what was known before this segment
        fired_any = False
        for k in range(n_cls):
            if v[k] >= threshold:
                fired_any = True
                v[k] = 0.0
                istate[I_N_OUTPUTS] += 1
                if teach:
                    # eq. 3.7, once per firing neuron in class order: E <- m E + R - [k fired]
                    for i in range(n_cls):
                        r = 1.0 if i == label else 0.0
                        e[i] = m * e[i] + r - (1.0 if i == k else 0.0)
        if fired_any:
            o = _write_record(o, t, _argmax_or_none(seg_scores, True), -1, 0, istate[I_SEG_TRAIN], seg_scores, out)
    return o


@njit(cache=True)
def _supervised_close(t: int, state: SupervisedState, istate: np.ndarray, o: int, out: Columns) -> int:
    """Write the decision record of the open segment (if any) with its summed scores."""
    seg_scores = state[4]
    if istate[I_SEG_OPEN] == 1:
        pred = _argmax_or_none(seg_scores, istate[I_SEG_INPUTS] > 0)
        o = _write_record(o, t, pred, istate[I_SEG_LABEL], 1, istate[I_SEG_TRAIN], seg_scores, out)
    return o


@njit(cache=True)
def _supervised_label(
    t: int, label: int, train: int, state: SupervisedState, istate: np.ndarray, o: int, out: Columns
) -> int:
    """Apply one label record: close the segment, reset E and V on a change of training label, and take
    the weights the next segment's scores will use (only a training segment can have changed them)."""
    w, w_open, e, v, seg_scores = state[:5]
    o = _supervised_close(t, state, istate, o, out)
    if istate[I_SEG_TRAIN] == 1:
        w_open[:, :] = w
    # Only training records are seen by the classifier; evaluation records just mark segments.
    if train == 1 and (label != istate[I_SEG_LABEL] or istate[I_SEG_TRAIN] != 1):
        e[:] = 0.0
        v[:] = 0.0
        istate[I_N_RESETS] += 1
    _open_segment(t, label, train, istate)
    seg_scores[:] = 0.0
    return o


@njit(cache=True)
def readout_run(
    spikes: Spikes, labels: Labels, state: ReadoutState, istate: np.ndarray, final: bool, out: Columns
) -> tuple[int, int]:
    """Run the label-assignment spike-count readout (thesis 3.3.1) over one batch of spikes.

    ``state`` = ``(counts, seg_counts, seg_scores, learn)``: ``counts`` (inputs, classes) int64 holds how
    often each top neuron was the most active one of a training segment of each class; ``seg_counts``
    (inputs,) int64 the spikes of each neuron in the current segment. Emits only decision records. Returns
    ``(labels used, n_out)``.
    """
    return _merge(
        spikes,
        labels,
        istate,
        final,
        out,
        state,
        _readout_label,
        _readout_spikes,
        _readout_close,
    )


@njit(cache=True)
def _readout_spikes(
    lo: int,
    hi: int,
    _spk_t: np.ndarray,
    spk_c: np.ndarray,
    state: ReadoutState,
    _istate: np.ndarray,
    o: int,
    _out: Columns,
) -> int:
    seg_counts = state[1]
    for s in range(lo, hi):
        seg_counts[spk_c[s]] += 1
    return o


@njit(cache=True)
def _readout_close(t: int, state: ReadoutState, istate: np.ndarray, o: int, out: Columns) -> int:
    """Decide the open segment by label assignment, then (training) label its most active neuron."""
    counts, seg_counts, seg_scores, learn = state
    n_in = counts.shape[0]
    n_cls = counts.shape[1]
    if istate[I_SEG_OPEN] == 1:
        pred = -1
        seg_scores[:] = 0.0
        winner = -1
        if istate[I_SEG_INPUTS] > 0:
            winner = _argmax_or_none(seg_counts, True)
            for j in range(n_in):
                if seg_counts[j] > 0:
                    pref = _preferred(counts, j)
                    if pref >= 0:
                        seg_scores[pref] += seg_counts[j]
            pred = _preferred(counts, winner)
        o = _write_record(o, t, pred, istate[I_SEG_LABEL], 1, istate[I_SEG_TRAIN], seg_scores, out)
        label = istate[I_SEG_LABEL]
        if learn and winner >= 0 and istate[I_SEG_TRAIN] == 1 and 0 <= label < n_cls:
            counts[winner, label] += 1
            istate[I_N_UPDATES] += 1
    return o


@njit(cache=True)
def _preferred(counts: np.ndarray, j: int) -> int:
    """Preferred label of neuron ``j``: most often assigned (lowest on ties), -1 when never labelled."""
    best = -1
    best_n = 0
    for k in range(counts.shape[1]):
        if counts[j, k] > best_n:
            best_n = counts[j, k]
            best = k
    return best


@njit(cache=True)
def _readout_label(
    t: int, label: int, train: int, state: ReadoutState, istate: np.ndarray, o: int, out: Columns
) -> int:
    o = _readout_close(t, state, istate, o, out)
    _open_segment(t, label, train, istate)
    state[1][:] = 0  # seg_counts
    state[2][:] = 0.0  # seg_scores
    return o


@njit(cache=True)
def delta_run(
    spikes: Spikes, labels: Labels, state: DeltaState, istate: np.ndarray, final: bool, out: Columns
) -> tuple[int, int]:
    """Run the delta-rule readout over one batch of spikes.

    Each input spike from neuron ``j`` adds ``w[:, j]`` to the segment scores ``S`` and counts ``j``;
    ``w`` changes only when a segment closes, so ``S = w x`` (``x``: the segment's spike counts) is the
    prediction made before its label teaches anything. A training segment with a known label then
    moves ``w`` by ``eta (R - S) x^T / |x|^2`` (least mean squares, normalised: one online step towards
    the least-squares readout of the counts). ``state`` = ``(w, seg_counts, seg_scores, eta, learn)``: ``w``
    (classes, inputs) float64, ``seg_counts`` (inputs,) int64, ``seg_scores`` (classes,) float64. Emits decision
    records only. Returns ``(labels used, n_out)``.
    """
    return _merge(
        spikes,
        labels,
        istate,
        final,
        out,
        state,
        _delta_label,
        _delta_spikes,
        _delta_close,
    )


@njit(cache=True)
def _delta_spikes(
    lo: int,
    hi: int,
    _spk_t: np.ndarray,
    spk_c: np.ndarray,
    state: DeltaState,
    _istate: np.ndarray,
    o: int,
    _out: Columns,
) -> int:
    w, seg_counts, seg_scores = state[:3]
    for s in range(lo, hi):
        j = spk_c[s]
        seg_counts[j] += 1
        for i in range(w.shape[0]):
            seg_scores[i] += w[i, j]
    return o


@njit(cache=True)
def _delta_close(t: int, state: DeltaState, istate: np.ndarray, o: int, out: Columns) -> int:
    """Decide the open segment by ``argmax S``, then (training) move ``w`` by the normalised delta rule."""
    w, seg_counts, seg_scores, eta, learn = state
    if istate[I_SEG_OPEN] == 1:
        pred = _argmax_or_none(seg_scores, istate[I_SEG_INPUTS] > 0)
        o = _write_record(o, t, pred, istate[I_SEG_LABEL], 1, istate[I_SEG_TRAIN], seg_scores, out)
        label = istate[I_SEG_LABEL]
        if learn and istate[I_SEG_TRAIN] == 1 and 0 <= label < w.shape[0] and istate[I_SEG_INPUTS] > 0:
            norm = 0.0
            for j in range(seg_counts.shape[0]):
                norm += seg_counts[j] * seg_counts[j]
            for i in range(w.shape[0]):
                step = eta * ((1.0 if i == label else 0.0) - seg_scores[i]) / norm
                for j in range(seg_counts.shape[0]):
                    if seg_counts[j]:
                        w[i, j] += step * seg_counts[j]
            istate[I_N_UPDATES] += 1
    return o


@njit(cache=True)
def _delta_label(t: int, label: int, train: int, state: DeltaState, istate: np.ndarray, o: int, out: Columns) -> int:
    o = _delta_close(t, state, istate, o, out)
    _open_segment(t, label, train, istate)
    state[1][:] = 0  # seg_counts
    state[2][:] = 0.0  # seg_scores
    return o
