"""The event-based classifiers: kernel vs slow reference, batch invariance, hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.classifier import (
    DeltaParams,
    DeltaReadout,
    LabelAssignmentReadout,
    ReadoutParams,
    SupervisedClassifier,
    SupervisedParams,
)
from nodes.evaluation import Evaluator
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE, prediction_dtype
from tests.reference.classifier_reference import delta_reference, readout_reference, supervised_reference


def spikes_of(t, c) -> np.ndarray:
    s = np.zeros(len(t), dtype=SPIKE_DTYPE)
    s["t"] = t
    s["c"] = c
    return s


def labels_of(*records) -> np.ndarray:
    return np.array(list(records), dtype=LABEL_DTYPE)


def as_tuples(out: np.ndarray) -> list[tuple]:
    return [
        (
            int(r["t"]),
            int(r["label"]),
            int(r["truth"]),
            int(r["decision"]),
            int(r["train"]),
            tuple(np.float32(x) for x in r["scores"]),
        )
        for r in out
    ]


def same_records(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical field by field (padding bytes of aligned records are not compared)."""
    return a.dtype == b.dtype and a.shape == b.shape and all(a[f].tobytes() == b[f].tobytes() for f in a.dtype.names)


def with_weights(clf: SupervisedClassifier, w: np.ndarray) -> SupervisedClassifier:
    state = clf.state_dict()
    state["w"] = np.asarray(w, dtype=np.float64)
    state["w_open"] = state["w"].copy()
    clf.load_state_dict(state)
    return clf


@st.composite
def streams(draw):
    """A random spike stream, label records within its time span, and a random feeding plan."""
    n_cls = draw(st.integers(1, 4))
    n_in = draw(st.integers(1, 6))
    n_spk = draw(st.integers(0, 60))
    dts = draw(st.lists(st.integers(0, 3), min_size=n_spk, max_size=n_spk))
    t = np.cumsum(np.array(dts, dtype=np.int64))
    c = draw(st.lists(st.integers(0, n_in - 1), min_size=n_spk, max_size=n_spk))
    n_lab = draw(st.integers(0, 10))
    span = int(t[-1]) + 3 if n_spk else 5
    lt = sorted(draw(st.lists(st.integers(0, span), min_size=n_lab, max_size=n_lab)))
    ll = draw(st.lists(st.integers(-1, n_cls - 1), min_size=n_lab, max_size=n_lab))
    ltr = draw(st.lists(st.integers(0, 1), min_size=n_lab, max_size=n_lab))
    spikes = spikes_of(t, c)
    labels = labels_of(*zip(lt, ll, ltr, strict=True)) if n_lab else np.zeros(0, LABEL_DTYPE)
    # feeding plan: spike batch boundaries, and for each batch how many extra labels to add early
    cuts = sorted(draw(st.lists(st.integers(0, n_spk), max_size=5)))
    extra = draw(st.lists(st.integers(0, 3), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    split = draw(st.integers(1, 3))
    return n_cls, n_in, spikes, labels, cuts, extra, split


def feed(clf, spikes: np.ndarray, labels: np.ndarray, cuts, extra, split) -> list[np.ndarray]:
    """Feed labels and spikes in batches, each label added before any spike at or after its t."""
    outs = []
    added = 0
    bounds = [0, *cuts, len(spikes)]
    for b in range(len(bounds) - 1):
        batch = spikes[bounds[b] : bounds[b + 1]]
        need = added
        if len(batch):
            need = int(np.searchsorted(labels["t"], batch["t"][-1], side="right"))
        upto = min(len(labels), max(need, added) + extra[b])
        while added < upto:  # in sub-batches of at most `split` records
            nxt = min(upto, added + split)
            clf.add_labels(labels[added:nxt])
            added = nxt
        outs.append(clf.process(batch))
    clf.add_labels(labels[added:])
    outs.append(clf.flush())
    return outs


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.booleans())
def test_supervised_matches_reference_in_any_batching(stream, learn) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    params = SupervisedParams(n_classes=n_cls, n_inputs=n_in, threshold=1.3, eta=0.2, m=0.7, seed=3)
    clf = SupervisedClassifier(params)
    if not learn:
        clf.freeze()
    w0 = clf.weights
    out = np.concatenate(feed(clf, spikes, labels, cuts, extra, split))
    ref, w_ref = supervised_reference(spikes, labels, w0, threshold=1.3, eta=0.2, m=0.7, learn=learn)
    assert as_tuples(out) == ref
    np.testing.assert_array_equal(clf.weights, w_ref)
    # one batch for everything gives the very same result
    one = SupervisedClassifier(params)
    if not learn:
        one.freeze()
    one.add_labels(labels)
    out1 = np.concatenate([one.process(spikes), one.flush()])
    assert same_records(out1, out)
    assert one.weights.tobytes() == clf.weights.tobytes()


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_readout_matches_reference_in_any_batching(stream) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    r = LabelAssignmentReadout(ReadoutParams(n_classes=n_cls, n_inputs=n_in))
    out = np.concatenate(feed(r, spikes, labels, cuts, extra, split))
    ref, counts = readout_reference(spikes, labels, n_cls, n_in)
    assert as_tuples(out) == ref
    np.testing.assert_array_equal(r.assignment_counts, counts)


def test_supervised_hand_computed() -> None:
    """One eq. 3.6 and two eq. 3.7 updates with numbers worked out by hand; reset rules."""
    p = SupervisedParams(n_classes=2, n_inputs=2, threshold=1.0, eta=0.5, m=0.5)
    clf = with_weights(SupervisedClassifier(p), [[0.5, 0.2], [0.3, 0.6]])
    clf.add_labels(labels_of((0, 1, 1)))
    out = clf.process(spikes_of([1, 2], [0, 0]))
    # E = 0, so no weight change; V = [1.0, 0.6] -> class 0 fires; E = m*0 + R - [fired] = [-1, 1]
    assert clf.error.tolist() == [-1.0, 1.0]
    assert clf.potential.tolist() == [0.0, 0.6]
    assert len(out) == 1
    assert out[0]["t"] == 2
    assert out[0]["label"] == 0
    assert out[0]["decision"] == 0
    out = clf.process(spikes_of([3], [1]))
    # eq. 3.6: w[:, 1] += 0.5 * [-1, 1] -> [-0.3, 1.1]; V = [-0.3, 1.7] -> class 1 fires
    np.testing.assert_array_equal(clf.weights, [[0.5, 0.2 - 0.5], [0.3, 0.6 + 0.5]])
    assert clf.error.tolist() == [0.5 * -1.0, 0.5 * 1.0 + 1.0 - 1.0]
    assert clf.potential.tolist() == [-0.3, 0.0]
    # the scores sum the weights as the segment opened (predict first, then learn): [1.0 + 0.2, 0.6 + 0.6]
    assert out[0]["label"] == 0  # a tie: the lowest class
    np.testing.assert_allclose(out[0]["scores"], [1.2, 1.2], rtol=1e-6)
    # an evaluation record: closes the segment, resets nothing, teaches nothing
    clf.add_labels(labels_of((4, 1, 0)))
    w_before = clf.weights
    out = clf.process(spikes_of([5], [0]))
    dec = out[out["decision"] == 1]
    assert len(dec) == 1
    assert (dec[0]["t"], dec[0]["label"], dec[0]["truth"], dec[0]["train"]) == (4, 0, 1, 1)
    assert clf.error.tolist() == [-0.5, 0.5]
    np.testing.assert_array_equal(clf.weights, w_before)
    np.testing.assert_allclose(clf.potential, [0.2, 0.3])
    # training again after evaluation: (label, train) changed -> E and V reset, then integrate
    clf.add_labels(labels_of((6, 1, 1), (7, 1, 1)))
    clf.process(spikes_of([6], [0]))
    assert clf.error.tolist() == [0.0, 0.0]
    np.testing.assert_allclose(clf.potential, [0.5, 0.3])
    assert clf.counters["resets"] == 2
    # same label again at t=7: a new segment but no reset
    out = clf.process(spikes_of([8], [0]))
    assert clf.counters["resets"] == 2
    np.testing.assert_allclose(clf.potential, [0.0, 0.6])  # 1.0 fired
    dec = clf.flush()
    assert dec["decision"].tolist() == [1]
    assert dec["t"][0] == 8
    assert dec["truth"][0] == 1


def test_eval_labels_never_teach_or_reset() -> None:
    rng = np.random.default_rng(5)
    p = SupervisedParams(n_classes=3, n_inputs=8, threshold=2.0, eta=0.3, m=0.8)
    clf = SupervisedClassifier(p)
    w0 = clf.weights
    t = np.sort(rng.integers(0, 1000, 400))
    clf.add_labels(labels_of(*[(int(x), int(rng.integers(0, 3)), 0) for x in range(0, 1000, 50)]))
    out = clf.process(spikes_of(t, rng.integers(0, 8, 400)))
    assert clf.weights.tobytes() == w0.tobytes()
    assert clf.counters["resets"] == 0
    assert clf.counters["updates"] == 0
    assert np.count_nonzero(out["decision"]) == 19  # 20 segments, the last one still open
    assert clf.counters["outputs"] > 0


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.booleans())
def test_delta_matches_reference_in_any_batching(stream, learn) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    r = DeltaReadout(DeltaParams(n_classes=n_cls, n_inputs=n_in, eta=0.3))
    if not learn:
        r.freeze()
    out = np.concatenate(feed(r, spikes, labels, cuts, extra, split))
    ref, w_ref = delta_reference(spikes, labels, n_cls, n_in, eta=0.3, learn=learn)
    assert as_tuples(out) == ref
    np.testing.assert_array_equal(r.weights, w_ref)


def test_delta_hand_computed_and_state_round_trip() -> None:
    """One normalised delta step by hand; decisions are made before the segment's label teaches; a state
    taken mid-segment continues bit for bit."""
    r = DeltaReadout(DeltaParams(n_classes=2, n_inputs=3, eta=0.5))
    r.add_labels(labels_of((0, 1, 1), (10, 1, 0)))
    out = np.concatenate([r.process(spikes_of([1, 2, 3, 11], [0, 0, 2, 0])), r.flush()])
    # segment 1 (class 1, training): w = 0, so S = [0, 0] -> class 0 (the lowest on a tie); counts x = [2, 0, 1],
    # |x|^2 = 5: w[1] += 0.5 * (1 - 0) / 5 * x = [0.2, 0, 0.1]; w[0] += 0.5 * (0 - 0) / 5 * x = 0
    # segment 2 (evaluation): one spike of neuron 0 -> S = [0, 0.2] -> class 1; nothing learnt
    assert out["label"].tolist() == [0, 1]
    assert out["truth"].tolist() == [1, 1]
    assert out["train"].tolist() == [1, 0]
    np.testing.assert_allclose(r.weights, [[0, 0, 0], [0.2, 0, 0.1]])
    np.testing.assert_allclose(out["scores"][1], [0, 0.2], rtol=1e-6)
    rng = np.random.default_rng(4)
    t = np.sort(rng.integers(0, 20_000, 4000))
    spikes = spikes_of(t, rng.integers(0, 16, 4000))
    labels = labels_of(*[(x, int(rng.integers(-1, 4)), int(rng.integers(0, 2))) for x in range(0, 20_000, 500)])
    p = DeltaParams(n_classes=4, n_inputs=16, eta=0.2)
    full = DeltaReadout(p)
    full.add_labels(labels)
    ref = np.concatenate([full.process(spikes), full.flush()])
    part = DeltaReadout(p)
    part.add_labels(labels)
    first = part.process(spikes[:1999])
    resumed = DeltaReadout(p)
    resumed.load_state_dict(part.state_dict())
    rest = np.concatenate([resumed.process(spikes[1999:]), resumed.flush()])
    assert same_records(np.concatenate([first, rest]), ref)
    assert resumed.weights.tobytes() == full.weights.tobytes()
    with pytest.raises(ValueError, match="in \\(0, 2\\)"):
        DeltaParams(eta=2.0)


def test_state_round_trip_continues_bit_identically() -> None:
    rng = np.random.default_rng(11)
    p = SupervisedParams(n_classes=4, n_inputs=16, threshold=3.0, eta=0.05, m=0.9)
    t = np.sort(rng.integers(0, 20_000, 5000))
    spikes = spikes_of(t, rng.integers(0, 16, 5000))
    labels = labels_of(*[(x, int(rng.integers(-1, 4)), int(rng.integers(0, 2))) for x in range(0, 20_000, 700)])
    full = SupervisedClassifier(p)
    full.add_labels(labels)
    ref = np.concatenate([full.process(spikes), full.flush()])
    part = SupervisedClassifier(p)
    part.add_labels(labels)  # some labels are still queued at the split: they must travel in the state
    first = part.process(spikes[:2500])
    state = part.state_dict()
    part.process(spikes[2500:2600])  # the old object moves on; the state must be a copy
    resumed = SupervisedClassifier(p)
    resumed.load_state_dict(state)
    rest = np.concatenate([resumed.process(spikes[2500:]), resumed.flush()])
    assert same_records(np.concatenate([first, rest]), ref)
    assert resumed.weights.tobytes() == full.weights.tobytes()
    assert resumed.counters == full.counters
    # a label earlier than spikes already processed is applied late, counted, never silently dropped
    resumed.add_labels(labels_of((int(t[-1]), 2, 1)))
    assert resumed.counters["late_labels"] == 1
    with pytest.raises(ValueError, match="earlier than the previous label"):
        resumed.add_labels(labels_of((0, 1, 1)))
    with pytest.raises(ValueError, match="c=16 >= n_inputs=16"):
        resumed.process(spikes_of([t[-1] + 1], [16]))
    with pytest.raises(ValueError, match="earlier than the last spike"):
        resumed.process(spikes_of([0], [1]))
    with pytest.raises(ValueError, match="n_classes"):
        SupervisedClassifier(SupervisedParams(n_classes=3, n_inputs=16)).load_state_dict(state)
    r = LabelAssignmentReadout(ReadoutParams(n_classes=4, n_inputs=16))
    with pytest.raises(ValueError, match="SupervisedClassifier"):
        r.load_state_dict(state)


def test_readout_hand_computed() -> None:
    r = LabelAssignmentReadout(ReadoutParams(n_classes=2, n_inputs=3))
    r.add_labels(labels_of((0, 0, 1), (10, 1, 1), (20, 1, 0), (30, 0, 0)))
    out = r.process(spikes_of([1, 2, 3, 11, 12, 13, 21, 22, 23, 24], [1, 1, 2, 2, 2, 1, 1, 2, 2, 0]))
    out = np.concatenate([out, r.flush()])
    # seg A (class 0): neuron 1 most active, nothing labelled yet -> -1, then neuron 1 gets label 0
    # seg B (class 1): neuron 2 most active, unlabelled -> -1; scores: neuron 1 (pref 0) spiked once
    # seg C (eval, class 1): neuron 2 (pref 1) most active -> 1; scores [1 (neuron 1), 2 (neuron 2)]
    # seg D (eval, class 0): no spikes -> -1
    assert out["label"].tolist() == [-1, -1, 1, -1]
    assert out["truth"].tolist() == [0, 1, 1, 0]
    assert out["train"].tolist() == [1, 1, 0, 0]
    assert out["t"].tolist() == [10, 20, 30, 30]
    assert out["scores"].tolist() == [[0, 0], [1, 0], [1, 2], [0, 0]]
    assert r.preferred_labels.tolist() == [-1, 0, 1]


def test_supervised_learns_a_separable_stream() -> None:
    """Class k drives inputs 8k..8k+7 (plus noise): after training, evaluation is nearly perfect."""
    rng = np.random.default_rng(2)
    n_cls, n_in, per = 4, 32, 60

    def segment_stream(n_seg: int, t0: int, train: int):
        truth = rng.integers(0, n_cls, n_seg)
        c = np.where(
            rng.random((n_seg, per)) < 0.8,
            truth[:, None] * 8 + rng.integers(0, 8, (n_seg, per)),
            rng.integers(0, n_in, (n_seg, per)),
        )
        t = t0 + np.arange(n_seg * per, dtype=np.int64) * 10
        labels = labels_of(*[(t0 + k * per * 10, int(truth[k]), train) for k in range(n_seg)])
        return spikes_of(t, c.ravel()), labels, t0 + n_seg * per * 10

    clf = SupervisedClassifier(SupervisedParams(n_classes=n_cls, n_inputs=n_in, threshold=5.0))
    ev = Evaluator(n_classes=n_cls, window=50)
    s, lab, t0 = segment_stream(300, 0, 1)
    clf.add_labels(lab)
    ev.update(clf.process(s))
    s, lab, _ = segment_stream(100, t0, 0)
    clf.add_labels(lab)
    ev.update(clf.process(s))
    ev.update(clf.flush())
    summary = ev.summary()
    assert summary["samples"] == {"train": 300, "test": 100}
    assert summary["test_accuracy"] >= 0.95
    assert summary["curve"][-1][1] >= 0.9  # windowed training accuracy at the end


def test_evaluator_hand_made_sequence() -> None:
    def rec(label: int, truth: int, decision: int, train: int) -> tuple:
        return (0, label, truth, decision, train, (0.0, 0.0, 0.0))

    recs = np.array(
        [
            rec(0, 0, 1, 1),  # train, right
            rec(2, -1, 0, 1),  # running prediction: ignored
            rec(1, 0, 1, 1),  # train, wrong
            rec(2, -1, 1, 1),  # unknown truth: ignored
            rec(2, 2, 1, 1),  # train, right
            rec(-1, 1, 1, 1),  # train, no decision: wrong
            rec(1, 1, 1, 0),  # test, right
            rec(-1, 2, 1, 0),  # test, none
            rec(0, 2, 1, 0),  # test, wrong
            rec(2, 2, 1, 0),  # test, right
        ],
        dtype=prediction_dtype(3),
    )
    ev = Evaluator(n_classes=3, window=2, curve_every=2)
    ev.update(recs[:3])
    ev.update(recs[3:])
    s = ev.summary()
    assert s["samples"] == {"train": 4, "test": 4}
    assert s["train_accuracy"] == 0.5
    assert s["window_accuracy"] == 0.5
    assert s["test_accuracy"] == 0.5
    assert s["curve"] == [[2, 0.5, 0.5], [4, 0.5, 0.5]]
    assert s["confusion"] == [[0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 1]]
    assert s["confusion_columns"] == [0, 1, 2, "none"]
    empty = Evaluator(n_classes=3).summary()
    assert empty["test_accuracy"] is None
    assert empty["train_accuracy"] is None
    json.dumps(s)  # JSON-able
    # classes that do not fit are refused batch by batch; what was measured before stays intact
    outside = np.array([rec(0, 0, 1, 0), rec(1, 3, 1, 0)], dtype=prediction_dtype(3))
    with pytest.raises(ValueError, match="classes up to 3 reach an evaluator of 3 classes"):
        ev.update(outside)
    with pytest.raises(ValueError, match="predictions of 3 classes reach an evaluator of 5"):
        Evaluator(n_classes=5).update(recs)
    assert ev.summary() == s


def test_training_decisions_are_made_before_learning_from_the_segment() -> None:
    """Prequential: a training segment's decision must not use what its own label taught. With labels that
    have nothing to do with the input there is nothing to learn, so the online accuracy must stay at
    chance; summing weights that the label moved within the segment scored 53 % here."""
    rng = np.random.default_rng(3)
    n_cls, n_in, seg = 4, 32, 40
    p = SupervisedParams(n_classes=n_cls, n_inputs=n_in, threshold=2.0, eta=0.05, m=0.9)
    clf = SupervisedClassifier(p)
    n = 400 * seg
    spikes = spikes_of(np.arange(n), rng.integers(0, n_in, n))
    clf.add_labels(labels_of(*[(k * seg, int(rng.integers(0, n_cls)), 1) for k in range(400)]))
    dec = np.concatenate([clf.process(spikes), clf.flush()])
    dec = dec[dec["decision"] == 1]
    assert len(dec) == 400
    assert clf.counters["updates"] > 0
    accuracy = float(np.mean(dec["label"] == dec["truth"]))
    assert accuracy < 0.4, accuracy  # chance is 0.25; 400 decisions: SD ~0.02


@pytest.mark.parametrize(
    ("readout", "learned"),
    [
        (SupervisedClassifier(SupervisedParams(n_classes=3, n_inputs=8, threshold=2.0, eta=0.3, m=0.8)), ("w", "e")),
        (LabelAssignmentReadout(ReadoutParams(n_classes=3, n_inputs=8)), ("counts",)),
        (DeltaReadout(DeltaParams(n_classes=3, n_inputs=8, eta=0.3)), ("w",)),
    ],
)
def test_after_training_evaluation_labels_change_nothing_learned(readout, learned) -> None:
    # Every readout first learns from training segments, then sees a stream of evaluation segments with
    # learning on: what it learned (and the supervised classifier's error terms) must stay bit for bit.
    rng = np.random.default_rng(11)
    t = np.sort(rng.integers(0, 2000, 800))
    c = rng.integers(0, 8, 800)
    train = [(x, int(rng.integers(0, 3)), 1) for x in range(0, 1000, 50)]
    evaluation = [(x, int(rng.integers(0, 3)), 0) for x in range(1000, 2000, 50)]
    readout.add_labels(labels_of(*train, *evaluation))
    first_eval = int(np.searchsorted(t, 1000)) + 1  # up to the first spike of the evaluation segments,
    readout.process(spikes_of(t[:first_eval], c[:first_eval]))  # which closes the last training segment
    before = readout.state_dict()
    assert any(np.any(before[k]) for k in learned)  # it did learn something to keep
    out = readout.process(spikes_of(t[first_eval:], c[first_eval:]))
    after = readout.state_dict()
    for k in learned:
        assert after[k].tobytes() == before[k].tobytes(), k
    decisions = out[out["decision"] == 1]
    assert len(decisions) == 19
    assert set(decisions["train"].tolist()) == {0}
