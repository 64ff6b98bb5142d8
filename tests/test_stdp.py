"""Tests of the STDP feature extractor: kernels vs the slow reference, hand-computed cases, invariants."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.stdp_reference import ReferenceNetwork

from nodes.stdp import ConvParams, FcParams, Network, PoolParams, kernel
from pipeline.events import EVENT_DTYPE, SPIKE_DTYPE

SMALL_SHAPE = (2, 12, 12)


def small_layers(*, r_inf: int = 0, wta_inf: bool = False, fc: int = 10) -> list:
    """A network where every mechanism fires often (low thresholds)."""
    return [
        ConvParams(maps=4, kernel=3, th_learn=2.0, th_inf=2.0, r_learn=1, r_inf=r_inf, a_minus=-0.02),
        PoolParams(),
        ConvParams(maps=6, kernel=3, th_learn=3.1, th_inf=2.7, r_learn=2, r_inf=-1, a_minus=-0.02),
        PoolParams(),
        FcParams(neurons=fc, th_learn=3.0, th_inf=2.1, a_minus=-0.01, wta_inf=wta_inf),
    ]


def random_spikes(n: int, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.zeros(n, SPIKE_DTYPE)
    s["t"] = np.sort(rng.integers(0, 10 * n + 1, n))
    s["c"] = rng.integers(0, shape[0], n)
    s["y"] = rng.integers(0, shape[1], n)
    s["x"] = rng.integers(0, shape[2], n)
    return s


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key]), f"state {key} differs"


def decode_nmnist(path: Path) -> np.ndarray:
    """N-MNIST .bin: 5 bytes per event, bits 39-32 x, 31-24 y, bit 23 polarity, bits 22-0 t (us)."""
    raw = np.fromfile(path, np.uint8)
    assert raw.size % 5 == 0, f"{path}: {raw.size} bytes is not a multiple of 5"
    b = raw.reshape(-1, 5).astype(np.int64)
    s = np.zeros(len(b), SPIKE_DTYPE)
    s["x"] = b[:, 0]
    s["y"] = b[:, 1]
    s["c"] = b[:, 2] >> 7
    s["t"] = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    return s


# ----------------------------------------------------------------------------- kernel vs reference


@pytest.fixture(params=["default", "always-search", "always-sort"])
def candidate_order(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kernel finds the next neuron to fire by searching small candidate sets and sorting large
    ones; both ways must give the reference's result, so the kernel-vs-reference tests run each."""
    cut = {"default": kernel.SELECT_MAX, "always-search": 1 << 40, "always-sort": 0}[request.param]
    monkeypatch.setattr(kernel, "SELECT_MAX", cut)
    return str(request.param)


@pytest.mark.parametrize(
    ("r_inf", "wta_inf", "fc", "seed"),
    [(0, False, 10, 1), (1, True, 10, 2), (-1, False, 40, 3)],
)
def test_matches_reference_spike_for_spike(r_inf: int, wta_inf: bool, fc: int, seed: int, candidate_order: str) -> None:
    layers = small_layers(r_inf=r_inf, wta_inf=wta_inf, fc=fc)
    net = Network(SMALL_SHAPE, layers, seed=seed)
    ref = ReferenceNetwork(SMALL_SHAPE, layers, seed=seed)
    spikes = random_spikes(500, SMALL_SHAPE, seed)
    # learning on, then a frozen stretch, then learning again
    for part, learning in ((spikes[:300], True), (spikes[300:400], False), (spikes[400:], True)):
        net.learning = learning
        ref.learning = learning
        got = net.process_all_layers(part)
        want = ref.process_all_layers(part)
        for layer, (g, w) in enumerate(zip(got, want, strict=True)):
            assert np.array_equal(g, w), f"layer {layer} output differs (learning={learning})"
        assert_same_state(net.state_dict(), ref.state_dict())
    counts = net.counters()
    # the comparison is only meaningful if every mechanism was exercised
    for i in (0, 2, 4):
        assert counts[i]["learning_spikes"] > 10
        assert counts[i]["inference_spikes"] > 10


def test_matches_reference_across_restarts_of_the_lazy_reset_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's int32 epochs of pending map resets restart (all pending resets applied) when they
    reach ``EPOCH_LIMIT``; with a limit of 3 they restart every few learning spikes, mid-input too."""
    monkeypatch.setattr(kernel, "EPOCH_LIMIT", 3)
    layers = small_layers(r_inf=0, wta_inf=True, fc=10)
    net = Network(SMALL_SHAPE, layers, seed=4)
    ref = ReferenceNetwork(SMALL_SHAPE, layers, seed=4)
    spikes = random_spikes(500, SMALL_SHAPE, 4)
    for part in (spikes[:250], spikes[250:]):
        got = net.process_all_layers(part)
        want = ref.process_all_layers(part)
        for layer, (g, w) in enumerate(zip(got, want, strict=True)):
            assert np.array_equal(g, w), f"layer {layer} output differs"
        assert_same_state(net.state_dict(), ref.state_dict())
    assert all(net.counters()[i]["learning_spikes"] > 20 for i in (0, 2, 4))


@pytest.mark.needs_data
def test_matches_reference_on_real_nmnist(data_dir: Path, candidate_order: str) -> None:
    path = data_dir / "nmnist" / "Train" / "0" / "00002.bin"
    spikes = decode_nmnist(path)
    assert len(spikes) > 1000
    assert spikes["x"].max() < 34
    assert spikes["y"].max() < 34
    spikes = spikes[:1200]
    layers = [
        ConvParams(maps=4, kernel=5, th_learn=4.0, th_inf=4.0, a_minus=-0.01),
        PoolParams(),
        ConvParams(maps=6, kernel=5, th_learn=8.0, th_inf=6.0, a_minus=-0.01),
        PoolParams(),
        FcParams(neurons=12, th_learn=8.0, th_inf=6.0, a_minus=-0.01),
    ]
    net = Network((2, 34, 34), layers, seed=7)
    ref = ReferenceNetwork((2, 34, 34), layers, seed=7)
    got = net.process_all_layers(spikes)
    want = ref.process_all_layers(spikes)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    assert_same_state(net.state_dict(), ref.state_dict())
    assert net.counters()[4]["inputs"] > 0


@pytest.mark.needs_data
def test_matches_reference_on_a_whole_real_nmnist_sample_with_fc_inference_wta(data_dir: Path) -> None:
    """The whole sample (5,028 events, three saccades) and the configs' fc inference WTA; the maps are few
    so that the pure-Python reference finishes in ~10 s."""
    spikes = decode_nmnist(data_dir / "nmnist" / "Train" / "0" / "00002.bin")
    layers = [
        ConvParams(maps=4, kernel=5, th_learn=4.0, th_inf=4.0, a_minus=-0.01),
        PoolParams(),
        ConvParams(maps=6, kernel=5, th_learn=8.0, th_inf=6.0, a_minus=-0.01),
        PoolParams(),
        FcParams(neurons=12, th_learn=8.0, th_inf=6.0, a_minus=-0.01, wta_inf=True),
    ]
    net = Network((2, 34, 34), layers, seed=7)
    ref = ReferenceNetwork((2, 34, 34), layers, seed=7)
    for g, w in zip(net.process_all_layers(spikes), ref.process_all_layers(spikes), strict=True):
        assert np.array_equal(g, w)
    assert_same_state(net.state_dict(), ref.state_dict())
    counts = net.counters()
    assert len(spikes) > 5000
    for i in (0, 2, 4):  # every weighted layer learnt and fired
        assert counts[i]["learning_spikes"] > 100
        assert counts[i]["inference_spikes"] > 100


def test_a_run_whose_output_would_overflow_stops_early_and_the_rest_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel never reallocates its output arrays: with more than about four inference spikes per
    input it stops early and says how many inputs it consumed, and the network runs the rest. Here every
    input fires every neuron it reaches (9 positions x 4 maps, no inhibition): the run must be split,
    and the result must still be the reference's."""
    calls = []
    run = kernel.weighted_layer_run

    def recording_run(*args):
        result = run(*args)
        calls.append((len(args[0]), result[5]))
        return result

    monkeypatch.setattr(kernel, "weighted_layer_run", recording_run)
    layers = [ConvParams(maps=4, kernel=3, th_learn=2.0, th_inf=0.01, r_learn=1, r_inf=-1, a_minus=-0.02)]
    net = Network(SMALL_SHAPE, layers, seed=5)
    ref = ReferenceNetwork(SMALL_SHAPE, layers, seed=5)
    spikes = random_spikes(300, SMALL_SHAPE, 5)
    got = net.process(spikes)
    want = ref.process_all_layers(spikes)[-1]
    assert any(consumed < n for n, consumed in calls), calls
    assert sum(consumed for _, consumed in calls) == len(spikes)
    assert len(got) > 4 * len(spikes)
    assert np.array_equal(got, want)
    assert_same_state(net.state_dict(), ref.state_dict())


# ----------------------------------------------------------------------------- hand-computed cases


def spikes_at(xs: list[int], ys: list[int] | None = None, cs: list[int] | None = None) -> np.ndarray:
    s = np.zeros(len(xs), SPIKE_DTYPE)
    s["t"] = np.arange(len(xs)) * 10
    s["x"] = xs
    s["y"] = ys if ys is not None else 0
    s["c"] = cs if cs is not None else 0
    return s


def f32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (weights are stored as float32)."""
    return float(np.float32(value))


def with_weights(net: Network, layer: int, weight: np.ndarray) -> None:
    state = net.state_dict()
    state[f"{layer}.weight"] = np.asarray(weight, np.float32).reshape(state[f"{layer}.weight"].shape)
    net.load_state_dict(state)


def test_one_stdp_update_exact_numbers() -> None:
    # one neuron over a 2x2 input; inputs (0,0) and (0,1) fire and push V_l to the threshold 1.0
    p = ConvParams(maps=1, kernel=2, th_learn=1.0, th_inf=100.0, a_minus=-0.01, a_plus=0.1, beta_plus=3.0)
    net = Network((1, 2, 2), [p])
    with_weights(net, 0, [0.5, 0.5, 0.5, 0.9])
    net.process(spikes_at([0, 1], [0, 0]))
    st_ = net.state_dict()
    # float32 storage: update computed in float64 from the stored float32 value, then rounded
    potentiated = f32(0.5 + 0.1 * math.exp(-3.0 * 0.5))
    w_09 = float(np.float32(0.9))
    assert st_["0.weight"].ravel().tolist() == [potentiated, potentiated, f32(0.5 - 0.01), f32(w_09 - 0.01)]
    assert st_["0.v_learn"].ravel().tolist() == [0.0]
    assert st_["0.v_inf"].ravel().tolist() == [1.0]
    assert st_["0.ref"].ravel().tolist() == [2]
    assert st_["0.map_ref"].tolist() == [2]
    assert st_["0.last_in"].ravel().tolist() == [1, 2, 0, 0]
    # next spike at (1,0): it fired since ref=2, the others did not -> only it is potentiated; weights
    # clip at 1 (a_plus large) and at 0
    p2 = ConvParams(maps=1, kernel=2, th_learn=0.1, th_inf=100.0, a_minus=-0.6, a_plus=5.0, beta_plus=0.0)
    net2 = Network((1, 2, 2), [p2])
    net2.load_state_dict(st_)
    net2.process(spikes_at([0], [1]))
    assert net2.state_dict()["0.weight"].ravel().tolist() == [0.0, 0.0, 1.0, f32(f32(w_09 - 0.01) - 0.6)]


def test_intra_map_wta_resets_the_whole_map() -> None:
    p = ConvParams(maps=1, kernel=1, th_learn=1.0, th_inf=100.0, r_learn=0, a_minus=-0.1, a_plus=0.2)
    net = Network((1, 1, 4), [p])
    with_weights(net, 0, [0.5])
    net.process(spikes_at([0, 1, 3, 0]))  # neuron 0 reaches 1.0 at event 4; neurons 1 and 3 hold 0.5
    st_ = net.state_dict()
    assert st_["0.counters"].tolist() == [4, 1, 0]
    assert st_["0.v_learn"].ravel().tolist() == [0.0, 0.0, 0.0, 0.0]
    assert st_["0.ref"].ravel().tolist() == [4, 4, 4, 4]
    w1 = f32(0.5 + 0.2 * math.exp(-3.0 * 0.5))  # input 0 fired since ref 0
    assert st_["0.weight"].ravel().tolist() == [w1]
    # after the reset neuron 1 starts from 0: one more spike gives exactly the new weight
    net.process(spikes_at([1]))
    assert net.state_dict()["0.v_learn"].ravel().tolist() == [0.0, w1, 0.0, 0.0]


def test_inter_map_wta_resets_other_maps_within_radius() -> None:
    p = ConvParams(maps=2, kernel=1, th_learn=1.0, th_inf=100.0, r_learn=1, a_minus=-0.1, a_plus=0.2)
    net = Network((1, 1, 5), [p])
    with_weights(net, 0, [0.6, 0.5])
    # map 0 reaches 1.2 at x=2 and fires first; map 1 at x=2 (1.0, also at threshold) is inhibited
    net.process(spikes_at([3, 0, 2, 2]))
    st_ = net.state_dict()
    assert st_["0.counters"].tolist() == [4, 1, 0]
    vl = st_["0.v_learn"][:, 0, :]
    assert vl[0].tolist() == [0.0] * 5  # intra-map reset of map 0
    assert vl[1].tolist() == [0.5, 0.0, 0.0, 0.0, 0.0]  # x=3 within radius 1 of x=2, x=0 is not
    assert st_["0.ref"][1, 0].tolist() == [0, 4, 4, 4, 0]
    assert st_["0.map_ref"].tolist() == [4, 0]
    assert st_["0.weight"].ravel()[1] == 0.5  # map 1 never learned


@pytest.mark.parametrize(("r_inf", "expect_c"), [(0, [0]), (-1, [0, 1])])
def test_inference_inhibition_radius_zero(r_inf: int, expect_c: list[int]) -> None:
    p = ConvParams(maps=2, kernel=1, th_learn=100.0, th_inf=1.0, r_inf=r_inf)
    net = Network((1, 1, 3), [p])
    with_weights(net, 0, [0.6, 0.5])
    out = net.process(spikes_at([0, 1, 1]))
    assert out["c"].tolist() == expect_c  # larger accumulator first
    assert out["x"].tolist() == [1] * len(expect_c)
    assert out["t"].tolist() == [20] * len(expect_c)
    vi = net.state_dict()["0.v_inf"][:, 0, :]
    assert vi[1].tolist() == [0.5, 0.0, 0.0]  # x=0 is another position: untouched by inhibition
    # ties: equal accumulators -> lowest map index fires, the other is inhibited
    net2 = Network((1, 1, 3), [p])
    with_weights(net2, 0, [0.5, 0.5])
    out2 = net2.process(spikes_at([2, 2]))
    assert out2["c"].tolist() == expect_c


def test_many_equal_candidates_fire_in_canonical_order(candidate_order: str) -> None:
    # 10 maps x 3 positions all reach exactly 1.0 on the same event, all tied, so the order is the
    # canonical flat index (m, y, x), whether the candidates are searched or sorted
    p = ConvParams(maps=10, kernel=3, th_learn=1.0, th_inf=1.0, r_learn=0, r_inf=-1, a_minus=-0.1)
    layers = [p]
    net = Network((1, 3, 5), layers)
    with_weights(net, 0, np.full(90, 0.5))
    ref = ReferenceNetwork((1, 3, 5), layers)
    ref.layers[0].weight[:] = np.float32(0.5)
    spikes = spikes_at([2, 2], [1, 1])
    out = net.process(spikes)
    assert out["c"].tolist() == [m for m in range(10) for _ in range(3)]
    assert out["x"].tolist() == [0, 1, 2] * 10
    assert np.array_equal(out, ref.process_all_layers(spikes)[0])
    st_ = net.state_dict()
    # learning: (m=0, x=0) wins the tie and resets map 0 and, with r_learn=0, every map at x=0; then
    # (m=1, x=1) is the first one left and resets x=1; then (m=2, x=2); nothing is left after that
    assert st_["0.counters"].tolist() == [2, 3, 30]
    assert st_["0.map_ref"].tolist() == [2, 2, 2] + [0] * 7
    assert_same_state(st_, ref.state_dict())


def test_pool_forwards_every_spike_and_keeps_partial_windows() -> None:
    net = Network((1, 7, 7), [ConvParams(maps=2, kernel=2, th_learn=9.0, th_inf=0.1, r_inf=-1), PoolParams()])
    assert net.layer_shapes == ((2, 6, 6), (2, 3, 3))
    net2 = Network((1, 5, 5), [ConvParams(maps=1, kernel=1, th_learn=9.0, th_inf=0.01), PoolParams()])
    assert net2.layer_shapes[-1] == (1, 3, 3)  # ceil(5 / 2)
    out = net2.process_all_layers(spikes_at([4, 4, 3], [4, 3, 4]))
    assert out[1]["x"].tolist() == [2, 2, 1]
    assert out[1]["y"].tolist() == [2, 1, 2]
    assert net2.counters()[1] == {"kind": "pool", "inputs": 3, "learning_spikes": 0, "inference_spikes": 3}


def test_fc_learning_spike_resets_whole_layer_and_uses_flat_index() -> None:
    p = FcParams(neurons=3, th_learn=1.0, th_inf=100.0, a_minus=-0.1, a_plus=0.2)
    net = Network((2, 2, 2), [p])
    w = np.full((3, 8), 0.3)
    w[1, (1 * 2 + 1) * 2 + 0] = 0.9  # neuron 1 likes input (c=1, y=1, x=0)
    with_weights(net, 0, w)
    net.process(spikes_at([0, 0], [1, 1], [1, 1]))
    st_ = net.state_dict()
    assert st_["0.counters"].tolist() == [2, 1, 0]
    assert st_["0.v_learn"].tolist() == [0.0, 0.0, 0.0]
    assert st_["0.ref"].tolist() == [2, 2, 2]
    w_09 = float(np.float32(0.9))
    assert st_["0.weight"][1, 6] == f32(w_09 + 0.2 * math.exp(-3.0 * w_09))
    assert st_["0.weight"][1, 0] == pytest.approx(0.2)
    assert np.array_equal(st_["0.weight"][[0, 2]], w[[0, 2]].astype(np.float32))


# ----------------------------------------------------------------------------- invariants (Hypothesis)

streams = st.tuples(st.integers(0, 400), st.integers(0, 2**31 - 1))


def fresh(seed: int = 0) -> Network:
    return Network(SMALL_SHAPE, small_layers(r_inf=0, wta_inf=True), seed=seed)


@settings(max_examples=20, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_batch_invariance(stream: tuple[int, int], cuts: list[int]) -> None:
    spikes = random_spikes(stream[0], SMALL_SHAPE, stream[1])
    whole = fresh()
    want = whole.process_all_layers(spikes)
    split = fresh()
    bounds = sorted({min(c, len(spikes)) for c in cuts} | {0, len(spikes)})
    parts = [split.process_all_layers(spikes[a:b]) for a, b in itertools.pairwise(bounds)]
    for layer in range(len(want)):
        got = np.concatenate([p[layer] for p in parts]) if parts else np.zeros(0, SPIKE_DTYPE)
        assert np.array_equal(got, want[layer])
    assert_same_state(split.state_dict(), whole.state_dict())


@settings(max_examples=15, deadline=None)
@given(stream=streams, k=st.integers(2, 10**6))
def test_timescale_invariance(stream: tuple[int, int], k: int) -> None:
    spikes = random_spikes(stream[0], SMALL_SHAPE, stream[1])
    base = fresh()
    want = base.process(spikes)
    scaled = spikes.copy()
    scaled["t"] *= k
    net = fresh()
    got = net.process(scaled)
    assert np.array_equal(got[["x", "y", "c"]], want[["x", "y", "c"]])
    assert np.array_equal(got["t"], want["t"] * k)
    assert_same_state(net.state_dict(), base.state_dict())
    flat = spikes.copy()
    flat["t"] = 12345
    net2 = fresh()
    got2 = net2.process(flat)
    assert np.array_equal(got2[["x", "y", "c"]], want[["x", "y", "c"]])
    assert np.all(got2["t"] == 12345)
    assert_same_state(net2.state_dict(), base.state_dict())


@settings(max_examples=10, deadline=None)
@given(stream=streams, split=st.integers(0, 400))
def test_state_dict_round_trip_continues_exactly(stream: tuple[int, int], split: int) -> None:
    spikes = random_spikes(stream[0], SMALL_SHAPE, stream[1])
    a, b = spikes[:split], spikes[split:]
    straight = fresh()
    straight.process(a)
    want_b = straight.process_all_layers(b)
    first = fresh()
    first.process(a)
    saved = {k: v.copy() for k, v in first.state_dict().items()}
    resumed = fresh(seed=99)  # different initial weights: everything must come from the state
    resumed.load_state_dict(saved)
    got_b = resumed.process_all_layers(b)
    for g, w in zip(got_b, want_b, strict=True):
        assert np.array_equal(g, w)
    assert_same_state(resumed.state_dict(), straight.state_dict())


def layers_from(state: dict[str, np.ndarray], at: int) -> dict[str, np.ndarray]:
    """The state of layers ``at..`` of a network, numbered as in a network made of those layers alone."""
    out = {}
    for key, value in state.items():
        layer, name = key.split(".", 1)
        if int(layer) >= at:
            out[f"{int(layer) - at}.{name}"] = value
    return out


@settings(max_examples=10, deadline=None)
@given(stream=streams, at=st.sampled_from([1, 2, 3, 4]))
def test_a_network_split_in_two_computes_what_the_whole_does(stream: tuple[int, int], at: int) -> None:
    # Two stdp nodes in a row (to use two cores) must learn exactly what one node with all the layers
    # learns, given the same initial weights: the second part starts from the whole's weights.
    spikes = random_spikes(stream[0], SMALL_SHAPE, stream[1])
    whole = fresh()
    start = whole.state_dict()
    layers = small_layers(r_inf=0, wta_inf=True)
    first = Network(SMALL_SHAPE, layers[:at], seed=0)
    second = Network(whole.layer_shapes[at - 1], layers[at:], seed=7)
    second.load_state_dict(layers_from(start, at))
    want = whole.process_all_layers(spikes)
    got = first.process_all_layers(spikes)
    got += second.process_all_layers(got[-1])
    for layer, (g, w) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(g, w), f"layer {layer}"
    state = whole.state_dict()
    assert_same_state(first.state_dict(), {k: v for k, v in state.items() if int(k.split(".")[0]) < at})
    assert_same_state(second.state_dict(), layers_from(state, at))


@settings(max_examples=15, deadline=None)
@given(stream=streams, seed=st.integers(0, 2**32 - 1), other=st.integers(0, 2**32 - 1))
def test_determinism_and_seed(stream: tuple[int, int], seed: int, other: int) -> None:
    # The same seed and stream give the same spikes and state, bit for bit, in two separate networks;
    # another seed gives other initial weights in every weighted layer.
    spikes = random_spikes(stream[0], SMALL_SHAPE, stream[1])
    one, two = fresh(seed), fresh(seed)
    for g, w in zip(one.process_all_layers(spikes), two.process_all_layers(spikes), strict=True):
        assert np.array_equal(g, w)
    assert_same_state(one.state_dict(), two.state_dict())
    if other != seed:
        a, b = fresh(seed).state_dict(), fresh(other).state_dict()
        for key in ("0.weight", "2.weight", "4.weight"):
            assert not np.array_equal(a[key], b[key]), key


# ----------------------------------------------------------------------------- state and validation


def test_frozen_network_keeps_weights_and_learning_state() -> None:
    net = fresh()
    net.process(random_spikes(300, SMALL_SHAPE, 1))
    before = net.state_dict()
    net.set_learning(False)
    assert net.learning is False
    out = net.process(random_spikes(300, SMALL_SHAPE, 2))
    after = net.state_dict()
    assert len(out) > 0
    for key in before:
        if key.endswith((".weight", ".v_learn", ".ref", ".map_ref")):
            assert np.array_equal(before[key], after[key]), key
    assert before["0.counters"][1] > 0  # it did learn before it was frozen
    assert after["0.counters"][1] == before["0.counters"][1]


def test_load_state_dict_refuses_a_state_that_does_not_fit() -> None:
    net = fresh()
    state = net.state_dict()
    other = Network(SMALL_SHAPE, small_layers(fc=11))
    with pytest.raises(ValueError, match=r"4\.weight.*\(10, 24\).*\(11, 24\)"):
        other.load_state_dict(state)
    broken = dict(state)
    del broken["2.last_in"]
    with pytest.raises(ValueError, match=r"2\.last_in"):
        net.load_state_dict(broken)
    bad = dict(state)
    bad["0.ref"] = bad["0.ref"].astype(np.float32)
    with pytest.raises(ValueError, match=r"0\.ref"):
        net.load_state_dict(bad)
    unreachable = dict(state)
    unreachable["0.ref"] = state["0.ref"].copy()
    unreachable["0.ref"][0, 0, 0] = state["0.counters"][0] + 5  # one neuron reset alone, never happens
    with pytest.raises(ValueError, match=r"0\.ref.*not max\(position reset, map_ref\)"):
        net.load_state_dict(unreachable)
    assert_same_state(net.state_dict(), state)  # nothing changed


def test_validation_at_the_door() -> None:
    net = fresh()
    with pytest.raises(ValueError, match="SPIKE_DTYPE"):
        net.process(np.zeros(3, EVENT_DTYPE))
    bad = random_spikes(5, SMALL_SHAPE, 0)
    bad["x"][3] = 12
    with pytest.raises(ValueError, match="spike 3 has x = 12"):
        net.process(bad)
    bad = random_spikes(5, SMALL_SHAPE, 0)
    bad["c"][1] = 2
    with pytest.raises(ValueError, match="spike 1 has c = 2"):
        net.process(bad)
    with pytest.raises(ValueError, match="th_learn"):
        ConvParams(maps=2, th_learn=0.0, th_inf=1.0)
    with pytest.raises(ValueError, match="kernel 5 is larger"):
        Network((1, 4, 4), [ConvParams(maps=2, th_learn=1.0, th_inf=1.0)])
    assert net.counters()[0]["inputs"] == 0  # rejected batches changed nothing
    assert len(net.process(np.zeros(0, SPIKE_DTYPE))) == 0


def test_from_config_and_defaults() -> None:
    net = Network.from_config(
        {
            "input_shape": [2, 34, 34],
            "layers": [
                {"type": "conv", "maps": 16, "th_learn": 8, "th_inf": 8},
                {"type": "pool"},
                {"type": "conv", "maps": 8, "th_learn": 50, "th_inf": 50},
                {"type": "pool"},
                {"type": "fc", "neurons": 32, "th_learn": 60, "th_inf": 60},
            ],
        }
    )
    assert net.layer_shapes == ((16, 30, 30), (16, 15, 15), (8, 11, 11), (8, 6, 6), (32, 1, 1))
    p = net.params[0]
    assert isinstance(p, ConvParams)
    assert p.a_plus_effective == -8 * p.a_minus
    assert p.r_learn == 2
    w = net.state_dict()["0.weight"]
    assert w.min() >= 0.0
    assert w.max() <= 1.0
    assert abs(w.mean() - 0.8) < 0.02
    with pytest.raises(ValueError, match="unknown key 'sise'"):
        Network.from_config({"input_shape": [1, 5, 5], "layers": [{"type": "pool", "sise": 2}]})
