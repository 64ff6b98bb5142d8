"""Kheradpisheh's SDNN: its kernels against slow references, hand-computed waves, layer-by-layer learning,
the per-label reset, batch invariance and determinism of the node, and its config checks."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.sdnn import kernel
from nodes.sdnn.layers import SdnnConv, SdnnPool
from nodes.sdnn.network import DogParams, SdnnNetwork, dog_kernel
from nodes.sdnn.node import SdnnConfig, SdnnNode
from pipeline.config import build_params
from pipeline.errors import CheckpointError, ConfigError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE, SPIKE_DTYPE
from pipeline.message import FREEZE, SPIKES, Message, control_message, events_message, labels_message
from pipeline.node import NodeContext
from tests.reference.sdnn_reference import (
    conv_wave_reference,
    dog_reference,
    latency_reference,
    pool_reference,
    stdp_reference,
    winners_reference,
)

TINY = (
    SdnnConv(maps=4, kernel=3, threshold=2.0, winners=2, radius=1, images=6, rate_growth=2.0, rate_every=2),
    SdnnPool(size=2, stride=2),
    SdnnConv(maps=5, kernel=2, threshold=1.0, winners=2, radius=0, images=6),
)


def random_times(rng: np.random.Generator, shape: tuple[int, ...], steps: int) -> np.ndarray:
    t = rng.integers(0, steps, shape).astype(np.int32)
    t[rng.random(shape) < 0.4] = steps  # some never spike
    return t


def test_dog_and_latency_agree_with_the_references() -> None:
    rng = np.random.default_rng(0)
    frame = rng.random((9, 8))
    kern = dog_kernel(DogParams(size=5, sigma_center=1.0, sigma_surround=2.0))
    dog = kernel.dog_filter(frame, kern)
    np.testing.assert_allclose(dog, dog_reference(frame.tolist(), kern.tolist()), rtol=1e-12, atol=1e-12)
    values = np.round(rng.random((2, 5, 6)), 1)  # ties: rank by flat index
    got = kernel.intensity_to_latency(values, 0.3, 7)
    assert got.ravel().tolist() == latency_reference(values.ravel().tolist(), 0.3, 7)
    assert got.min() == 0
    assert (got < 7).sum() == (values > 0.3).sum()


def test_the_dog_kernel_is_zero_sum_with_an_on_centre() -> None:
    kern = dog_kernel(DogParams())
    assert abs(kern.sum()) < 1e-12
    assert kern.max() == kern[3, 3] == 1.0
    assert kern[0, 0] < 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_conv_wave_pool_winners_and_stdp_agree_with_the_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = 6
    times = random_times(rng, (2, 7, 6), steps)
    w = rng.random((3, 2, 3, 3))
    out_t, at_spike, final = kernel.conv_wave(times, w, 2.5, steps)
    want_t, want_v, want_final = conv_wave_reference(times.tolist(), w.tolist(), 2.5, steps)
    assert out_t.tolist() == want_t
    np.testing.assert_allclose(at_spike, want_v, rtol=1e-12)
    np.testing.assert_allclose(final, want_final, rtol=1e-12)
    assert (out_t < steps).sum() > 3
    assert kernel.pool_wave(out_t, 2, 1).tolist() == pool_reference(out_t.tolist(), 2, 1)
    win = kernel.select_winners(out_t, at_spike, 3, 1, steps)
    assert [tuple(r) for r in win.tolist()] == winners_reference(out_t.tolist(), at_spike.tolist(), 3, 1, steps)
    before = w.copy()
    kernel.stdp_update(w, times, out_t, win, 0.05, -0.04)
    np.testing.assert_allclose(w, stdp_reference(before.tolist(), times.tolist(), out_t.tolist(), win, 0.05, -0.04))
    assert not np.array_equal(w, before)


def test_a_tiny_wave_by_hand_one_winner_map_per_position() -> None:
    # one input channel, 1x2 input, kernel 1x1... as a 1x1 conv over two pixels spiking at steps 0 and 1
    times = np.array([[[0, 1]]], np.int32)
    w = np.array([[[[0.6]]], [[[0.9]]], [[[0.9]]]])  # three maps; maps 1 and 2 tie: the lower index wins
    out_t, at_spike, final = kernel.conv_wave(times, w, 0.5, 3)
    assert out_t[:, 0, :].tolist() == [[3, 3], [0, 1], [3, 3]]
    assert at_spike[1, 0].tolist() == [0.9, 0.9]
    assert final[:, 0, 0].tolist() == [0.6, 0.9, 0.9]  # potentials keep integrating; inhibition stops spikes
    # STDP: a causal input potentiates by a+ w (1 - w), a later one depresses by a- w (1 - w)
    w2 = np.array([[[[0.5]], [[0.5]]]])  # one map, two input channels, 1x1 kernel
    in_t = np.array([[[0]], [[2]]], np.int32)
    kernel.stdp_update(w2, in_t, np.array([[[1]]], np.int32), np.array([[0, 0, 0]]), 0.1, -0.2)
    assert w2.ravel().tolist() == [0.5 + 0.1 * 0.25, 0.5 - 0.2 * 0.25]


def test_layers_learn_one_after_the_other_and_the_rates_grow_on_schedule() -> None:
    net = SdnnNetwork(12, 12, DogParams(size=3, sigma_center=0.5, sigma_surround=1.0), TINY, seed=1)
    rng = np.random.default_rng(5)
    w0 = [w.copy() for w in net.weights]
    assert net.rates(0) == (0.004, -0.003)
    outs = [net.present(rng.random((12, 12))) for _ in range(6)]
    assert outs == [None] * 6
    assert net.learnt.tolist() == [6, 0]
    assert net.rates(0) == pytest.approx((0.004 * 8, -0.003 * 8))  # x2 every 2 images
    assert not np.array_equal(net.weights[0], w0[0])
    np.testing.assert_array_equal(net.weights[1], w0[1])  # the upper layer waits its turn
    for _ in range(6):
        net.present(rng.random((12, 12)))
    assert net.learnt.tolist() == [6, 6]
    out = net.present(rng.random((12, 12)))
    assert out is not None
    assert out[0].shape == out[1].shape == (5,)
    assert net.learnt.tolist() == [6, 6]


def test_a_padded_layer_sees_never_spiking_inputs_around_the_frame_and_learns_there() -> None:
    layers = (SdnnConv(maps=3, kernel=3, pad=1, threshold=1.0, winners=3, radius=0, images=1),)
    net = SdnnNetwork(6, 6, DogParams(size=3, sigma_center=0.5, sigma_surround=1.0, threshold=0.01, steps=4), layers, 3)
    assert net.shapes == [(3, 6, 6)]  # "same" size: 6 + 2 - 3 + 1
    frame = np.zeros((6, 6))
    frame[0, 0] = 1.0  # a corner dot: only padded windows centre on it
    times = net.input_wave(frame)
    padded = np.full((2, 8, 8), 4, np.int32)
    padded[:, 1:7, 1:7] = times
    w = net.weights[0].copy()
    out_t, at_spike, _ = kernel.conv_wave(padded, w, 1.0, 4)
    assert (out_t[:, 0, 0] < 4).any()  # a neuron centred on the corner fires
    win = kernel.select_winners(out_t, at_spike, 3, 0, 4)
    kernel.stdp_update(w, padded, out_t, win, 0.004, -0.003)
    assert net.present(frame) is None  # the layer learns from this image
    np.testing.assert_array_equal(net.weights[0], w)  # exactly as the valid wave over the padded input
    with pytest.raises(ValueError, match="pad"):
        SdnnConv(maps=1, threshold=1.0, pad=-1)


def segments(seed: int, n: int = 8, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """``n`` latency-coded random blobs of 1000 µs each, one label per image."""
    rng = np.random.default_rng(seed)
    events, labels = [], []
    for i in range(n):
        img = np.zeros((size, size))
        cy, cx = rng.integers(3, size - 3, 2)
        img[cy - 2 : cy + 2, cx - 1 : cx + 2] = rng.random((4, 3))
        ys, xs = np.nonzero(img > 0.05)
        e = np.zeros(len(ys), EVENT_DTYPE)
        e["t"] = i * 1000 + ((1 - img[ys, xs]) * 999).astype(np.int64)
        e["x"], e["y"], e["p"] = xs, ys, 1
        events.append(e[np.argsort(e["t"], kind="stable")])
        labels.append((i * 1000, i % 3, 1))
    return np.concatenate(events), np.array(labels, LABEL_DTYPE)


def make_node(features_out: str = "", *, standardize: bool = False) -> SdnnNode:
    config = SdnnConfig(
        input=(12, 12),
        reset="label",
        layers=TINY,
        dog=DogParams(size=3, sigma_center=0.5, sigma_surround=1.0, threshold=0.01, steps=5),
        span_us=1000,
        quantum=0.1,
        seed=2,
        features_out=features_out,
        standardize=standardize,
    )
    return SdnnNode("sdnn", config, NodeContext("sdnn", "g"))


def run_node(node: SdnnNode, events: np.ndarray, labels: np.ndarray, cuts: list[int]) -> list[Message]:
    async def go() -> list[Message]:
        out = list(await node.process(labels_message(labels)))
        bounds = [0, *sorted(cuts), len(events)]
        for a, b in itertools.pairwise(bounds):
            if b > a:
                out += await node.process(events_message(events[a:b], 12, 12))
        out += await node.flush()
        return out

    return asyncio.run(go())


def spikes_of(msgs: list[Message]) -> np.ndarray:
    parts = [m.data for m in msgs if m.kind == SPIKES and m.data is not None]
    return np.concatenate(parts) if parts else np.zeros(0, SPIKE_DTYPE)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), cuts=st.lists(st.integers(0, 400), max_size=5))
def test_the_node_is_deterministic_and_the_same_whatever_the_batching(seed: int, cuts: list[int]) -> None:
    events, labels = segments(seed, n=16)
    a, b = make_node(), make_node()
    out_a = spikes_of(run_node(a, events, labels, []))
    out_b = spikes_of(run_node(b, events, labels, [c % len(events) for c in cuts]))
    np.testing.assert_array_equal(out_a, out_b)
    for wa, wb in zip(a.net.weights, b.net.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.net.learnt.tolist() == [6, 6]
    assert a.images == 16
    assert a.waves_out == 4  # 12 images taught the two layers, the last 4 give features
    if len(out_a):
        # each image's features leave at its last event, inside its own label's segment
        seg = out_a["t"] // 1000
        assert set(seg.tolist()) <= set(range(12, 16))


def test_each_label_starts_a_fresh_wave_and_features_reach_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    events, labels = segments(7, n=16)
    node = make_node(str(tmp_path / "f.npz"))
    node.net.learnt[:] = [6, 6]  # learning done: every image gives features
    out = run_node(node, events, labels, [100])
    saved = np.load(tmp_path / "f.npz")
    assert saved["features"].shape == (16, 5)
    assert saved["label"].tolist() == [i % 3 for i in range(16)]
    # the same image alone (a fresh network in the same state) gives the same features: nothing carries over
    alone = make_node()
    alone.net.learnt[:] = [6, 6]
    one = events[(events["t"] >= 5000) & (events["t"] < 6000)]
    run_node(alone, one, labels[5:6], [])
    frame = alone._frame(one)  # the frame the node built
    assert frame.max() > 0.9
    feats = alone.net.present(frame)
    assert feats is not None
    np.testing.assert_allclose(saved["features"][5], feats[0].astype(np.float32))
    assert sum(m.kind == "labels" for m in out) == 1  # labels pass through


def test_standardized_features_use_only_earlier_training_segments_and_go_out_on_two_channels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    events, labels = segments(11, n=16)
    labels["train"][-3:] = 0  # the last three images are test images: they never join the statistics
    node = make_node(str(tmp_path / "f.npz"), standardize=True)
    node.net.learnt[:] = [6, 6]
    assert SdnnNode.stream_facts(node.config, {})["shape"] == (10, 1, 1)  # two channels per map
    out = spikes_of(run_node(node, events, labels, [50, 300]))
    raw = np.load(tmp_path / "f.npz")["features"].astype(np.float64)
    np.testing.assert_allclose(node.standardizer.mean, raw[:13].mean(0), rtol=1e-5, atol=1e-6)
    assert node.standardizer.n == 13
    seg = out["t"] // 1000
    for i in range(16):
        prior = raw[: min(i, 13)]
        got = np.bincount(out["c"][seg == i], minlength=10)
        if len(prior) < 2:
            assert got.sum() == 0  # no statistics yet: nothing to say
            continue
        sd = prior.std(0, ddof=1)
        z = np.clip(np.where(sd > 0, (raw[i] - prior.mean(0)) / np.where(sd > 0, sd, 1.0), 0.0), -8, 8)
        want = np.floor(np.concatenate([np.maximum(z, 0), np.maximum(-z, 0)]) / 0.1)
        assert np.abs(got - want).max() <= 1  # float32 rows in the file: a count may differ at a boundary
    # two features equal up to rounding have no spread: a third cannot be billions of deviations away
    tiny = make_node(standardize=True)
    for f in (1.0, 1.0 + 1e-15):
        tiny.standardizer.counts(np.full(5, f), train=True, quantum=0.1)
    assert tiny.standardizer.counts(np.full(5, 2.0), train=False, quantum=0.1).sum() == 0
    tiny.standardizer.counts(np.full(5, 3.0), train=True, quantum=0.1)
    assert (
        tiny.standardizer.counts(np.full(5, 1e9), train=False, quantum=0.1).max() == 80
    )  # |z| capped at 8 (quantum 0.1)
    fresh = make_node(standardize=True)
    fresh.restore(node.snapshot())
    assert fresh.standardizer.n == 13
    np.testing.assert_array_equal(fresh.standardizer.m2, node.standardizer.m2)


def test_a_freeze_closes_the_open_image_before_learning_stops() -> None:
    events, labels = segments(3, n=4)
    node = make_node()

    async def go() -> None:
        await node.process(labels_message(labels))
        await node.process(events_message(events, 12, 12))
        node.control(control_message(FREEZE, scope="features"))

    asyncio.run(go())
    assert node.images == 4
    assert node.net.learnt.tolist() == [4, 0]
    assert not node.net.learning


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"input": [28, 28], "layers": [{"type": "conv", "maps": 2, "threshold": 1.0}]}, "missing required key"),
        ({"input": [28, 28], "reset": "never"}, "reset"),
        (
            {"input": [8, 8], "reset": "label", "layers": [{"type": "conv", "maps": 2, "threshold": 1.0, "kernel": 9}]},
            "does not fit",
        ),
        ({"input": [28, 28], "reset": "label", "layers": [{"type": "pool"}]}, "last layer must be a conv"),
        (
            {
                "input": [28, 28],
                "reset": "label",
                "layers": [{"type": "conv", "maps": 2, "threshold": 1.0, "a_minus": 0.1}],
            },
            "a_minus",
        ),
        (
            {
                "input": [28, 28],
                "reset": "label",
                "layers": [{"type": "conv", "maps": 2, "threshold": 1.0, "th_learn": 8.0}],
            },
            "unknown key 'th_learn'",
        ),
        ({"input": [28, 28], "reset": "label", "dog": {"size": 6}}, "odd"),
    ],
)
def test_bad_sdnn_configs_are_refused_with_the_reason(table: dict[str, object], message: str) -> None:
    def check() -> None:
        SdnnNode.stream_facts(build_params(SdnnConfig, table, "nodes.sdnn"), {})

    with pytest.raises(ConfigError, match=message):
        check()


def test_a_checkpoint_restores_the_weights_and_progress_and_refuses_another_architecture() -> None:
    events, labels = segments(4, n=8)
    node = make_node()
    run_node(node, events, labels, [])
    state = node.snapshot()
    fresh = make_node()
    fresh.restore(state)
    for a, b in zip(node.net.weights, fresh.net.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fresh.net.learnt.tolist() == node.net.learnt.tolist() == [6, 2]
    state["net.w1"] = np.zeros((3, 4, 2, 2))
    with pytest.raises(CheckpointError, match="conv layer 1"):
        make_node().restore(state)
