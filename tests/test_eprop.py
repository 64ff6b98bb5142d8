"""The e-prop readout: its online updates are the gradient a backward pass computes, whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.classifier import EpropParams, EpropReadout, EpropRule
from nodes.classifier.node import ClassifierConfig, ClassifierNode
from pipeline.config import ConfigError, build_params
from pipeline.node import NodeContext
from tests.reference.eprop_reference import eprop_reference
from tests.test_classifier import feed, labels_of, same_records, spikes_of, streams


def readout(n_cls: int, n_in: int, rule: EpropRule, seed: int = 3) -> EpropReadout:
    return EpropReadout(EpropParams(n_classes=n_cls, n_inputs=n_in, seed=seed, rule=rule))


def reference_of(clf: EpropReadout, spikes: np.ndarray, labels: np.ndarray) -> tuple[list[tuple], np.ndarray]:
    r = clf.params.rule
    return eprop_reference(
        spikes,
        labels,
        clf.weights,
        tau_mem=r.tau_mem_us,
        tau_out=r.tau_out_us,
        theta=r.threshold,
        sharpness=r.sharpness,
        eta=r.eta,
        target=r.target,
    )


#: time constants of a few microseconds, so that the stream's 0-3 us gaps decay the traces visibly
rules = st.builds(
    EpropRule,
    tau_mem_us=st.floats(1.0, 20.0),
    tau_out_us=st.floats(1.0, 20.0),
    threshold=st.floats(0.5, 2.0),
    sharpness=st.floats(0.5, 4.0),
    eta=st.floats(0.0, 0.5),
    target=st.floats(0.5, 2.0),
    w_std=st.floats(0.1, 1.5),
)


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), rules)
def test_online_updates_equal_the_backpropagated_gradient_in_any_batching(stream, rule) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    clf = readout(n_cls, n_in, rule)
    ref, w_ref = reference_of(clf, spikes, labels)
    out = np.concatenate(feed(clf, spikes, labels, cuts, extra, split))
    np.testing.assert_allclose(clf.weights, w_ref, rtol=1e-9, atol=1e-9)
    assert len(out) == len(ref)
    for rec, (t, label, truth, decision, train, scores) in zip(out, ref, strict=True):
        assert (int(rec["t"]), int(rec["truth"]), int(rec["decision"]), int(rec["train"])) == (
            t,
            truth,
            decision,
            train,
        )
        np.testing.assert_allclose(rec["scores"], scores, rtol=1e-5, atol=1e-5)
        margin = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        if len(margin) == 1 or margin[0] - margin[1] > 1e-4:  # a near-tie may fall either way in float
            assert int(rec["label"]) == label


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), rules, st.booleans())
def test_learning_is_deterministic_and_identical_whatever_the_batching(stream, rule, learn) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    fed = readout(n_cls, n_in, rule)
    one = readout(n_cls, n_in, rule)
    if not learn:
        fed.freeze()
        one.freeze()
    out = np.concatenate(feed(fed, spikes, labels, cuts, extra, split))
    one.add_labels(labels)
    out1 = np.concatenate([one.process(spikes), one.flush()])
    assert same_records(out1, out)
    a, b = fed.state_dict(), one.state_dict()
    for name in EpropReadout._state_arrays:
        assert a[name].tobytes() == b[name].tobytes(), name
    if not learn:
        assert fed.weights.tobytes() == readout(n_cls, n_in, rule).weights.tobytes()


def test_two_updates_by_hand() -> None:
    # one input, one class, threshold 1, target 1, sharpness 1, time constants 10 us, weight 0.6.
    rule = EpropRule(tau_mem_us=10.0, tau_out_us=10.0, threshold=1.0, sharpness=1.0, eta=0.5, target=1.0, w_std=0.0)
    clf = readout(1, 1, rule)
    state = clf.state_dict()
    state["w"] = np.array([[0.6]])
    state["w_fwd"] = state["w"].copy()
    clf.load_state_dict(state)
    clf.add_labels(labels_of((0, 0, 1)))
    clf.process(spikes_of([0, 10], [0, 0]))
    # spike at t=0: x = 1, u = 0.6 (no spike), psi = 1 / 1.4^2, e = psi, y = 0, error -1: w += 0.5 e.
    # spike at t=10: everything decays by 1/e; the neurons still run on 0.6 (the segment's opening weight):
    # x = 1 + 1/e, u = 0.6 / e + 0.6 (no spike), e = psi1 / e + psi2 x, y = 0: w += 0.5 e.
    psi1 = 1 / 1.4**2
    u2 = 0.6 / np.e + 0.6
    psi2 = 1 / (1 + abs(u2 - 1)) ** 2
    w = 0.6 + 0.5 * psi1 + 0.5 * (psi1 / np.e + psi2 * (1 + 1 / np.e))
    np.testing.assert_allclose(clf.potential, [u2])
    np.testing.assert_allclose(clf.weights, [[w]])
    # an evaluation segment: the neuron starts from rest on the learnt weight; one spike scores w
    clf.add_labels(labels_of((20, 0, 0)))
    out = np.concatenate([clf.process(spikes_of([25], [0])), clf.flush()])
    decisions = out[out["decision"] == 1]
    assert decisions["train"].tolist() == [1, 0]
    np.testing.assert_allclose(decisions["scores"][:, 0], [0.6 + u2, w], rtol=1e-6)
    np.testing.assert_allclose(clf.weights, [[w]])  # evaluation never teaches


def test_it_learns_a_separable_stream_and_state_round_trips() -> None:
    # Class k fires inputs 2k and 2k+1; after a few hundred training segments the evaluation segments are
    # all right, and a state taken mid-stream continues bit for bit.
    rng = np.random.default_rng(5)
    rule = EpropRule(tau_mem_us=2000.0, tau_out_us=2000.0, threshold=1.0, eta=0.01, target=1.0)
    times, chans, labs = [], [], []
    for seg in range(400):
        k = int(rng.integers(0, 3))
        labs.append((seg * 1000, k, 1 if seg < 300 else 0))
        for t in np.sort(rng.integers(seg * 1000, seg * 1000 + 1000, 8)):
            times.append(int(t))
            chans.append(2 * k + int(rng.integers(0, 2)))
    spikes, labels = spikes_of(times, chans), labels_of(*labs)
    full = readout(3, 6, rule)
    full.add_labels(labels)
    out = np.concatenate([full.process(spikes), full.flush()])
    dec = out[(out["decision"] == 1) & (out["train"] == 0)]
    assert len(dec) == 100
    assert np.mean(dec["label"] == dec["truth"]) == 1.0
    part = readout(3, 6, rule)
    part.add_labels(labels)
    first = part.process(spikes[:1501])
    resumed = readout(3, 6, rule)
    resumed.load_state_dict(part.state_dict())
    rest = np.concatenate([resumed.process(spikes[1501:]), resumed.flush()])
    assert same_records(np.concatenate([first, rest]), out)


def test_its_parameters_come_from_a_config_table_and_bad_values_are_named() -> None:
    p = build_params(EpropParams, {"n_classes": 4, "rule": {"tau_mem_us": 5e4, "eta": 0.01}}, "test")
    assert p.rule.tau_mem_us == 5e4
    assert p.rule.tau_out_us == EpropRule().tau_out_us
    with pytest.raises(ConfigError, match="test rule: unknown key 'tau'"):
        build_params(EpropParams, {"rule": {"tau": 1.0}}, "test")
    with pytest.raises(ConfigError, match="tau_out_us must be > 0"):
        build_params(EpropParams, {"rule": {"tau_out_us": 0.0}}, "test")


def test_the_classifier_node_builds_it_from_its_table_with_the_node_seed_and_eta() -> None:
    table = {"readout": "eprop", "classes": 3, "inputs": 12, "seed": 7, "eta": 0.02, "eprop": {"tau_mem_us": 5e4}}
    config = build_params(ClassifierConfig, table, "[nodes.classifier]")
    clf = ClassifierNode("c", config, NodeContext("c", "g")).clf
    assert isinstance(clf, EpropReadout)
    assert clf.params.seed == 7
    assert clf.params.rule.eta == 0.02  # the node's eta, when set, is the rule's
    assert clf.params.rule.tau_mem_us == 5e4
    assert clf.weights.tobytes() == readout(3, 12, clf.params.rule, seed=7).weights.tobytes()
    with pytest.raises(ConfigError, match=r"\[nodes.classifier\] eprop: unknown key 'tau_us'"):
        build_params(ClassifierConfig, {"readout": "eprop", "eprop": {"tau_us": 1.0}}, "[nodes.classifier]")
