"""The trace rule (LIF neurons, pair STDP with exponential traces): its kernel against the slow reference
(``tests/reference/trace_reference.py``), hand-computed dynamics, and what it promises: determinism,
batch invariance, a checkpoint that resumes exactly. It is not timescale invariant, and a test says so."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.stdp import Network, PoolParams, TraceConvParams, TraceFcParams
from nodes.stdp.rules.trace import kernel
from pipeline.events import SPIKE_DTYPE
from tests.reference.trace_reference import TraceReferenceNetwork

SHAPE = (2, 7, 7)


def layers(
    tau_syn: float = 0.0, update: str = "additive", tau_m: float = 20_000.0, theta_plus: float = 0.0
) -> list[object]:
    """conv (WTA radii 1 and 0, refractory, reset below rest) -> pool -> fc (wta_inf); with ``theta_plus``
    both learn with an adaptive threshold (decaying over 30 ms), the fc's inference neurons use it too."""
    theta = {"theta_plus": theta_plus, "tau_theta_us": 30_000.0}
    return [
        TraceConvParams(
            maps=3,
            kernel=3,
            th_learn=1.6,
            th_inf=1.3,
            r_learn=1,
            r_inf=0,
            tau_m_us=tau_m,
            tau_syn_us=tau_syn,
            t_ref_us=700.0,
            a_ltp=0.05,
            a_ltd=0.04,
            x_tar=0.3,
            update=update,
            v_reset=-0.2,
            **theta,
        ),
        PoolParams(),
        TraceFcParams(
            neurons=4,
            th_learn=1.2,
            th_inf=1.0,
            wta_inf=True,
            tau_syn_us=tau_syn,
            update=update,
            theta_inf=True,
            **theta,
        ),
    ]


def random_spikes(n: int, seed: int, span_us: int = 60_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.zeros(n, SPIKE_DTYPE)
    s["t"] = np.sort(rng.integers(0, span_us, n))
    s["x"] = rng.integers(0, SHAPE[2], n)
    s["y"] = rng.integers(0, SHAPE[1], n)
    s["c"] = rng.integers(0, SHAPE[0], n)
    return s


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


# ----------------------------------------------------------------------------- dynamics by hand


def test_a_delta_synapse_neuron_decays_exponentially_between_inputs():
    v, cur = kernel.advance(2.0, 0.0, 1000, 0.0, 6000, 10_000.0, 0.0)
    assert v == pytest.approx(2.0 * math.exp(-0.5), rel=1e-15)
    assert cur == 0.0


def test_a_current_based_neuron_follows_the_closed_form_for_distinct_and_equal_time_constants():
    tau_m, tau_s, h = 10_000.0, 2_500.0, 4_000.0
    v, cur = kernel.advance(0.5, 2e-4, 0, 0.0, int(h), tau_m, tau_s)
    gain = tau_m * tau_s / (tau_m - tau_s) * (math.exp(-h / tau_m) - math.exp(-h / tau_s))
    assert v == pytest.approx(0.5 * math.exp(-h / tau_m) + 2e-4 * gain, rel=1e-12)
    assert cur == pytest.approx(2e-4 * math.exp(-h / tau_s), rel=1e-15)
    v_eq, _ = kernel.advance(0.0, 1e-4, 0, 0.0, int(h), tau_m, tau_m)
    assert v_eq == pytest.approx(1e-4 * h * math.exp(-h / tau_m), rel=1e-12)
    v_near, _ = kernel.advance(0.0, 1e-4, 0, 0.0, int(h), tau_m, tau_m * (1 + 1e-12))
    assert v_near == pytest.approx(v_eq, rel=1e-9)  # no cancellation as the time constants meet


def test_a_refractory_neuron_holds_its_potential_while_its_current_decays():
    v, cur = kernel.advance(-0.2, 1e-3, 0, 3000.0, 2000, 10_000.0, 5_000.0)
    assert v == -0.2
    assert cur == pytest.approx(1e-3 * math.exp(-2000 / 5000), rel=1e-15)
    v2, _ = kernel.advance(-0.2, 0.0, 0, 3000.0, 5000, 10_000.0, 0.0)
    assert v2 == pytest.approx(-0.2 * math.exp(-2000 / 10_000), rel=1e-15)  # leaks from the end only


def test_one_input_above_threshold_fires_potentiates_and_then_depresses_on_the_next_input():
    p = TraceFcParams(neurons=1, th_learn=0.5, th_inf=9.0, a_ltp=0.1, a_ltd=0.2, tau_pre_us=1000.0, tau_post_us=1000.0)
    net = Network((1, 1, 2), [p], seed=0)
    w0 = net.state_dict()["0.weight"].copy()
    spikes = np.zeros(2, SPIKE_DTYPE)
    spikes["t"] = [1000, 2000]
    spikes["x"] = [0, 1]
    net.process(spikes)
    w = net.state_dict()["0.weight"]
    assert w0[0, 0] >= 0.5  # (the seed's draw: the first input alone reaches threshold)
    # post spike at 1000: w[0] += 0.1 * x_pre(=1); the input at 2000 depresses w[1] by 0.2 * e^-1
    assert w[0, 0] == pytest.approx(min(1.0, w0[0, 0] + 0.1), rel=1e-15)
    assert w[0, 1] == pytest.approx(max(0.0, w0[0, 1] - 0.2 * math.exp(-1.0)), rel=1e-15)
    assert net.counters()[0]["learning_spikes"] >= 1


def test_an_adaptive_threshold_rises_with_each_learning_spike_and_decays_exactly():
    p = TraceFcParams(
        neurons=1, th_learn=0.5, th_inf=9.0, a_ltp=0.0, a_ltd=0.0, tau_m_us=1000.0, theta_plus=0.25,
        tau_theta_us=4000.0, w_init_mean=0.6, w_init_std=0.0,
    )  # fmt: skip
    net = Network((1, 1, 1), [p], seed=0)
    spikes = np.zeros(3, SPIKE_DTYPE)
    spikes["t"] = [1000, 1001, 9000]
    net.process(spikes)
    state = net.state_dict()
    # 1000: v = 0.6 fires, theta = 0.25. 1001: v = 0.6 < 0.5 + 0.25 (v_reset 0 plus one input): no spike.
    # 9000: v ~ 0 + 0.6 >= 0.5 + 0.25 e^-2 (0.534): fires, theta = 0.25 e^-(8000/4000) + 0.25
    assert net.counters()[0]["learning_spikes"] == 2
    assert state["0.theta"][0] == pytest.approx(0.25 * math.exp(-2.0) + 0.25, rel=1e-15)
    assert state["0.t_theta"][0] == 9000


def test_without_theta_plus_the_threshold_never_moves():
    net = Network(SHAPE, layers(), seed=0)
    net.process(random_spikes(200, seed=2))
    state = net.state_dict()
    assert net.counters()[0]["learning_spikes"] > 0
    for key in ("0.theta", "0.t_theta", "2.theta", "2.t_theta"):
        assert not np.any(state[key]), key


# ----------------------------------------------------------------------------- the reference


@pytest.mark.parametrize(
    ("tau_syn", "tau_m", "update", "theta_plus"),
    [
        (0.0, 20_000.0, "additive", 0.0),
        (0.0, 20_000.0, "multiplicative", 0.0),
        (3_000.0, 20_000.0, "additive", 0.0),
        (2_000.0, 2_000.0, "multiplicative", 0.0),  # tau_m == tau_syn
        (0.0, 20_000.0, "additive", 0.3),  # adaptive thresholds
        (3_000.0, 20_000.0, "multiplicative", 0.3),
    ],
)
def test_the_kernel_agrees_with_the_slow_reference(tau_syn, tau_m, update, theta_plus):
    spikes = random_spikes(200, seed=int(tau_syn) + len(update))
    ls = layers(tau_syn, update, tau_m, theta_plus)
    net = Network(SHAPE, ls, seed=3)
    ref = TraceReferenceNetwork(SHAPE, ls, seed=3)
    got, want = net.process_all_layers(spikes), ref.process_all_layers(spikes)
    assert [len(g) for g in got] == [len(w) for w in want]
    assert sum(len(g) for g in got) > 20  # spikes happen at every layer this test checks
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    sd, rd = net.state_dict(), ref.state_dict()
    for key in rd:
        if key.endswith(("counters", "map_spikes")):
            assert np.array_equal(sd[key], rd[key]), key
        elif key.endswith("weight"):
            assert np.allclose(sd[key], rd[key], rtol=0, atol=1e-12), key
        elif key.endswith("theta"):  # the kernel's at each neuron's last raise, the reference's at its last input
            layer = int(key.split(".")[0])
            since = ref.layers[layer].t_learn - sd[f"{layer}.t_theta"]
            assert np.allclose(sd[key] * np.exp(-since / 30_000.0), rd[key], rtol=0, atol=1e-12), key
    if theta_plus:
        assert sd["0.theta"].max() > 0
        assert sd["2.theta"].max() > 0


def test_learning_off_leaves_weights_and_learning_neurons_alone_and_infers_the_same():
    spikes = random_spikes(150, seed=5)
    on, off = Network(SHAPE, layers(), seed=1), Network(SHAPE, layers(), seed=1)
    off.learning = False
    before = off.state_dict()
    out_off = off.process(spikes)
    after = off.state_dict()
    for key in before:
        if not key.endswith(("counters", "v_i", "cur_i", "t_i", "ref_i")):
            assert np.array_equal(before[key], after[key]), key
    frozen_ref = TraceReferenceNetwork(SHAPE, layers(), seed=1)
    frozen_ref.learning = False
    assert np.array_equal(out_off, frozen_ref.process_all_layers(spikes)[-1])
    on.process(spikes)
    assert not np.array_equal(on.state_dict()["0.weight"], before["0.weight"])


def test_with_learning_off_thresholds_only_decay_and_inference_agrees_with_the_reference():
    spikes = random_spikes(300, seed=8)
    ls = layers(theta_plus=0.3)
    net, ref = Network(SHAPE, ls, seed=2), TraceReferenceNetwork(SHAPE, ls, seed=2)
    net.process_all_layers(spikes[:150])
    ref.process_all_layers(spikes[:150])
    raised = net.state_dict()
    assert raised["2.theta"].max() > 0
    net.learning = ref.learning = False
    got, want = net.process_all_layers(spikes[150:]), ref.process_all_layers(spikes[150:])
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert len(got[-1]) > 0
    for key in ("0.theta", "0.t_theta", "2.theta", "2.t_theta"):
        assert np.array_equal(net.state_dict()[key], raised[key]), key


# ----------------------------------------------------------------------------- invariants (Hypothesis)

streams = st.tuples(st.integers(0, 300), st.integers(0, 2**31 - 1))


@settings(max_examples=20, deadline=None)
@given(
    stream=streams,
    cuts=st.lists(st.integers(0, 300), max_size=5),
    tau_syn=st.sampled_from([0.0, 4000.0]),
    theta_plus=st.sampled_from([0.0, 0.3]),
)
def test_batch_invariance(stream: tuple[int, int], cuts: list[int], tau_syn: float, theta_plus: float) -> None:
    spikes = random_spikes(stream[0], stream[1])
    whole = Network(SHAPE, layers(tau_syn, theta_plus=theta_plus), seed=0)
    want = whole.process_all_layers(spikes)
    split = Network(SHAPE, layers(tau_syn, theta_plus=theta_plus), seed=0)
    bounds = sorted({min(c, len(spikes)) for c in cuts} | {0, len(spikes)})
    parts = [split.process_all_layers(spikes[a:b]) for a, b in itertools.pairwise(bounds)]
    for layer in range(len(want)):
        got = np.concatenate([p[layer] for p in parts]) if parts else np.zeros(0, SPIKE_DTYPE)
        assert np.array_equal(got, want[layer])
    assert_same_state(split.state_dict(), whole.state_dict())


@settings(max_examples=10, deadline=None)
@given(stream=streams, seed=st.integers(0, 2**16))
def test_the_same_seed_and_stream_learn_the_same_bits(stream: tuple[int, int], seed: int) -> None:
    spikes = random_spikes(stream[0], stream[1])
    ls = layers(3000.0, theta_plus=0.3)
    a, b = Network(SHAPE, ls, seed=seed), Network(SHAPE, ls, seed=seed)
    assert np.array_equal(a.process(spikes), b.process(spikes))
    assert_same_state(a.state_dict(), b.state_dict())


@settings(max_examples=8, deadline=None)
@given(stream=streams, split=st.integers(0, 300))
def test_state_dict_round_trip_continues_exactly(stream: tuple[int, int], split: int) -> None:
    spikes = random_spikes(stream[0], stream[1])
    ls = layers(3000.0, theta_plus=0.3)  # the adaptive thresholds must come back too
    first, straight = Network(SHAPE, ls, seed=0), Network(SHAPE, ls, seed=0)
    first.process(spikes[:split])
    straight.process(spikes[:split])
    resumed = Network(SHAPE, ls, seed=42)  # other weights: all must come from the state
    resumed.load_state_dict({k: v.copy() for k, v in first.state_dict().items()})
    assert np.array_equal(resumed.process(spikes[split:]), straight.process(spikes[split:]))
    assert_same_state(resumed.state_dict(), straight.state_dict())


def test_the_rule_is_not_timescale_invariant():
    """Thiele's rule learns the same from a stream replayed at any speed; this one has time constants."""
    spikes = random_spikes(250, seed=11)
    slow = spikes.copy()
    slow["t"] *= 20
    a, b = Network(SHAPE, layers(), seed=0), Network(SHAPE, layers(), seed=0)
    out_a, out_b = a.process(spikes), b.process(slow)
    assert len(out_a) != len(out_b) or not np.array_equal(a.state_dict()["0.weight"], b.state_dict()["0.weight"])


def test_a_checkpoint_of_another_shape_is_refused_naming_the_key():
    net = Network(SHAPE, layers(), seed=0)
    state = net.state_dict()
    state["0.x_pre"] = np.zeros((1, 7, 7))
    with pytest.raises(ValueError, match=r"state key '0.x_pre' has shape \(1, 7, 7\)"):
        net.load_state_dict(state)
