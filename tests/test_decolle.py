"""DECOLLE layers: each layer's online update is the gradient of its own local loss, whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.decolle import kernel
from nodes.decolle.network import DecolleLayer, DecolleNetwork, DecolleParams
from pipeline.config import ConfigError, build_params
from tests.reference.decolle_reference import conv_reference, decolle_reference
from tests.test_classifier import feed, labels_of, spikes_of, streams

#: time constants of a few microseconds, so that the stream's 0-3 us gaps decay the traces visibly
layers = st.builds(
    DecolleLayer,
    neurons=st.integers(1, 4),
    tau_mem_us=st.floats(1.0, 20.0),
    tau_out_us=st.floats(1.0, 20.0),
    threshold=st.floats(0.5, 2.0),
    sharpness=st.floats(0.5, 4.0),
    eta=st.floats(0.0, 0.5),
    target=st.floats(0.5, 2.0),
    quiet=st.sampled_from([0.0, 0.0, 0.3, 1.0]),
    floor=st.floats(-1.0, 0.4),
    busy=st.sampled_from([0.0, 0.0, 0.2, 1.5]),
    feedback=st.sampled_from(["readout", "random"]),
    w_mean=st.floats(0.0, 0.8),
    w_std=st.floats(0.1, 1.5),
)


def network(
    n_cls: int,
    n_in: int,
    *stack: DecolleLayer,
    seed: int = 3,
    shape: tuple[int, int, int] | None = None,
    rebase_every: int = kernel.REBASE_EVERY,
) -> DecolleNetwork:
    params = DecolleParams(n_inputs=n_in, n_classes=n_cls, layers=stack, seed=seed, input_shape=shape)
    return DecolleNetwork(params, rebase_every=rebase_every)


#: how often the kernel restarts its factored sums: every few spikes, or (the default) rarely
rebases = st.sampled_from([2, 5, kernel.REBASE_EVERY])


@st.composite
def conv_cases(draw):  # type: ignore[no-untyped-def]
    """An input geometry, a conv layer that fits it, and a stream over its channels (the labels and the
    feeding plan of ``streams``)."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(2, 4)), draw(st.integers(2, 4)))
    kernel = draw(st.integers(2, min(shape[1:])))  # (a 1x1 kernel is an fc layer per position)
    layer = draw(layers)
    layer = DecolleLayer(**{**vars(layer), "type": "conv", "maps": draw(st.integers(1, 2)), "kernel": kernel})
    n_cls, _, spikes, labels, cuts, extra, split = draw(streams())
    n_in = shape[0] * shape[1] * shape[2]
    spikes["c"] = draw(st.lists(st.integers(0, n_in - 1), min_size=len(spikes), max_size=len(spikes)))
    return shape, layer, (n_cls, n_in, spikes, labels, cuts, extra, split)


def same_spikes(a: np.ndarray, b: np.ndarray) -> bool:
    """Field by field (concatenation leaves the padding bytes of aligned records undefined)."""
    return all(a[f].tobytes() == b[f].tobytes() for f in ("t", "x", "y", "c"))


def reference_of(net: DecolleNetwork, layer: int, spikes: np.ndarray, labels: np.ndarray):
    p = net.params.layers[layer]
    return decolle_reference(
        spikes,
        labels,
        net.weights(layer),
        net.layers[layer]["g"],
        tau_mem=p.tau_mem_us,
        tau_out=p.tau_out_us,
        theta=p.threshold,
        sharpness=p.sharpness,
        eta=p.eta,
        target=p.target,
        quiet=p.quiet,
        floor=p.floor,
        busy=p.busy,
        feedback=p.feedback,
    )


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), layers, rebases)
def test_a_layers_online_update_equals_its_backpropagated_local_gradient_in_any_batching(
    stream, layer, rebase_every
) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    net = network(n_cls, n_in, layer, rebase_every=rebase_every)
    ref_out, w_ref = reference_of(net, 0, spikes, labels)
    out = np.concatenate(feed(net, spikes, labels, cuts, extra, split))
    np.testing.assert_allclose(net.weights(0), w_ref, rtol=1e-9, atol=1e-9)
    assert [(int(s["t"]), int(s["c"])) for s in out] == ref_out


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), layers, layers, st.booleans(), rebases)
def test_learning_is_deterministic_and_identical_whatever_the_batching(stream, low, high, learn, rebase_every) -> None:
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    fed = network(n_cls, n_in, low, high, rebase_every=rebase_every)
    one = network(n_cls, n_in, low, high, rebase_every=rebase_every)
    if not learn:
        fed.freeze()
        one.freeze()
    out = np.concatenate(feed(fed, spikes, labels, cuts, extra, split))
    one.add_labels(labels)
    out1 = np.concatenate([one.process(spikes), one.flush()])
    assert same_spikes(out, out1)
    a, b = fed.state_dict(), one.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name
    if not learn:
        assert fed.weights(0).tobytes() == network(n_cls, n_in, low, high).weights(0).tobytes()


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), rebases)
def test_a_conv_layers_online_update_equals_the_gradient_of_its_tied_weights_in_any_batching(
    case, rebase_every
) -> None:
    shape, layer, (n_cls, n_in, spikes, labels, cuts, extra, split) = case
    net = network(n_cls, n_in, layer, shape=shape, rebase_every=rebase_every)
    p = net.params.layers[0]
    ref_out, k_ref = conv_reference(
        spikes, labels, net.weights(0), net.layers[0]["g"], shape,
        tau_mem=p.tau_mem_us, tau_out=p.tau_out_us, theta=p.threshold, sharpness=p.sharpness, eta=p.eta,
        target=p.target, quiet=p.quiet, floor=p.floor, busy=p.busy, feedback=p.feedback,
    )  # fmt: skip
    out = np.concatenate(feed(net, spikes, labels, cuts, extra, split))
    np.testing.assert_allclose(net.weights(0), k_ref, rtol=1e-9, atol=1e-9)
    assert [(int(s["t"]), int(s["c"])) for s in out] == ref_out


def test_a_conv_layer_on_a_busy_stream_learns_its_tied_gradient() -> None:
    # A fixed case with every tap in use: a 3x3 kernel over 2 channels of a 4x5 input, hundreds of spikes
    # and training segments (the random cases above are small).
    rng = np.random.default_rng(8)
    spikes = spikes_of(np.sort(rng.integers(0, 400, 300)), rng.integers(0, 40, 300))
    labels = labels_of(*[(k * 40, k % 3, int(k % 4 != 3)) for k in range(10)])
    layer = DecolleLayer(type="conv", maps=2, kernel=3, tau_mem_us=30.0, tau_out_us=20.0, w_mean=0.2, w_std=0.3,
                         eta=0.02, target=2.0, quiet=0.3, floor=-0.2, busy=0.1)  # fmt: skip
    net = network(3, 40, layer, shape=(2, 4, 5))
    p, k0 = net.params.layers[0], net.weights(0)
    ref_out, k_ref = conv_reference(
        spikes, labels, k0, net.layers[0]["g"], (2, 4, 5),
        tau_mem=p.tau_mem_us, tau_out=p.tau_out_us, theta=p.threshold, sharpness=p.sharpness, eta=p.eta,
        target=p.target, quiet=p.quiet, floor=p.floor, busy=p.busy,
    )  # fmt: skip
    net.add_labels(labels)
    out = np.concatenate([net.process(spikes), net.flush()])
    assert len(ref_out) > 20  # it fires
    assert np.abs(k_ref - k0).max() > 0.01  # and learns
    np.testing.assert_allclose(net.weights(0), k_ref, rtol=1e-9, atol=1e-9)
    assert [(int(s["t"]), int(s["c"])) for s in out] == ref_out


def test_a_long_segment_restarts_the_kernels_sums_many_times_and_still_learns_the_exact_gradient() -> None:
    # One training segment of 125 membrane time constants: the kernel's factored sums restart every
    # ~7 time constants (A below REBASE_LOW) and, in the second network, every 16 spikes.
    rng = np.random.default_rng(5)
    spikes = spikes_of(np.sort(rng.integers(0, 250_000, 400)), rng.integers(0, 5, 400))
    labels = labels_of((0, 1, 1), (200_000, 0, 1))
    layer = DecolleLayer(neurons=2, tau_mem_us=2000.0, tau_out_us=3000.0, w_mean=0.3, w_std=0.3, eta=0.001,
                         target=2.0, quiet=0.2, floor=-0.3)  # fmt: skip
    w0 = network(2, 5, layer).weights(0)
    for rebase_every in (16, kernel.REBASE_EVERY):
        net = network(2, 5, layer, rebase_every=rebase_every)
        ref_out, w_ref = reference_of(net, 0, spikes, labels)
        net.add_labels(labels)
        out = np.concatenate([net.process(spikes), net.flush()])
        assert len(ref_out) > 50  # it fires
        assert np.abs(w_ref - w0).max() > 0.1  # and learns
        np.testing.assert_allclose(net.weights(0), w_ref, rtol=1e-9, atol=1e-9)
        assert [(int(s["t"]), int(s["c"])) for s in out] == ref_out


def test_a_conv_layer_feeds_an_fc_layer_and_says_its_shape() -> None:
    conv = DecolleLayer(type="conv", maps=3, kernel=2, tau_mem_us=40.0, tau_out_us=40.0, w_mean=0.5, eta=0.05)
    fc = DecolleLayer(neurons=4, tau_mem_us=40.0, tau_out_us=40.0, w_mean=0.3, eta=0.05)
    net = network(2, 2 * 4 * 5, conv, fc, shape=(2, 4, 5))
    assert net.layers[0]["w"].shape == (3, 2 * 2 * 2)  # maps, taps
    assert net.layers[1]["w"].shape == (4, 3 * 3 * 4)  # the fc layer sees every conv neuron
    assert net.output_shape == (4, 1, 1)
    assert network(2, 40, conv, shape=(2, 4, 5)).output_shape == (3, 3, 4)
    with pytest.raises(ValueError, match="does not fit its 1x1 input"):
        network(2, 40, fc, conv, shape=(2, 4, 5))
    with pytest.raises(ValueError, match="does not hold n_inputs"):
        network(2, 41, conv, shape=(2, 4, 5))
    rng = np.random.default_rng(5)
    spikes = spikes_of(np.sort(rng.integers(0, 3000, 500)), rng.integers(0, 40, 500))
    net.add_labels(labels_of(*[(k * 600, k % 2, 1) for k in range(5)]))
    before = net.weights(0)
    top = np.concatenate([net.process(spikes), net.flush()])
    assert len(top) > 0
    assert not np.array_equal(net.weights(0), before)
    assert net.counters["inputs"][1] == net.counters["outputs"][0]  # the fc layer got every conv spike


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), layers, layers)
def test_the_upper_layer_learns_its_own_local_gradient_on_the_lower_layers_spikes(stream, low, high) -> None:
    # The lower layer alone gives the spikes the upper layer sees; the upper layer's update is then the
    # gradient of its own loss over those spikes, with nothing passed down or up.
    n_cls, n_in, spikes, labels, cuts, extra, split = stream
    alone = network(n_cls, n_in, low)
    alone.add_labels(labels)
    lower_out = np.concatenate([alone.process(spikes), alone.flush()])
    both = network(n_cls, n_in, low, high)
    _, w_ref = reference_of(both, 1, lower_out, labels)
    top = np.concatenate(feed(both, spikes, labels, cuts, extra, split))
    np.testing.assert_allclose(both.weights(1), w_ref, rtol=1e-9, atol=1e-9)
    assert both.weights(0).tobytes() == alone.weights(0).tobytes()
    assert top.shape[0] == len(reference_of(network(n_cls, n_in, low, high), 1, lower_out, labels)[0])


def test_the_lower_layers_update_does_not_depend_on_the_upper_layers_weights() -> None:
    # Local learning: two stacks with the same lower layer and very different upper weights (and upper
    # layers that do fire and learn) end with bit-identical lower weights.
    rng = np.random.default_rng(2)
    t = np.sort(rng.integers(0, 4000, 600))
    spikes = spikes_of(t, rng.integers(0, 8, 600))
    labels = labels_of(*[(k * 500, k % 3, 1) for k in range(8)])
    low = DecolleLayer(neurons=6, tau_mem_us=50.0, tau_out_us=50.0, w_mean=0.3, w_std=0.3, eta=0.05)
    nets = []
    for w_mean in (0.0, 2.0):
        high = DecolleLayer(neurons=5, tau_mem_us=50.0, tau_out_us=50.0, w_mean=w_mean, w_std=0.5, eta=0.05)
        net = network(3, 8, low, high)
        before = net.weights(1)
        net.add_labels(labels)
        top = np.concatenate([net.process(spikes), net.flush()])
        assert len(top) > 0
        assert not np.array_equal(net.weights(1), before)  # the upper layer learnt
        nets.append(net)
    assert not np.array_equal(nets[0].weights(1), nets[1].weights(1))
    assert not np.array_equal(nets[0].weights(0), network(3, 8, low).weights(0))  # the lower layer learnt
    assert nets[0].weights(0).tobytes() == nets[1].weights(0).tobytes()


def test_a_state_taken_mid_stream_continues_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    spikes = spikes_of(np.sort(rng.integers(0, 3000, 400)), rng.integers(0, 6, 400))
    labels = labels_of(*[(k * 300, k % 2, int(k < 8)) for k in range(10)])
    low = DecolleLayer(neurons=5, tau_mem_us=40.0, tau_out_us=40.0, w_mean=0.4, eta=0.05)
    high = DecolleLayer(neurons=3, tau_mem_us=40.0, tau_out_us=40.0, w_mean=0.4, eta=0.05)
    full = network(2, 6, low, high)
    full.add_labels(labels)
    out = np.concatenate([full.process(spikes), full.flush()])
    part = network(2, 6, low, high)
    part.add_labels(labels)
    first = part.process(spikes[:171])
    resumed = network(2, 6, low, high, seed=9)  # another seed: everything comes from the state
    resumed.load_state_dict(part.state_dict())
    rest = np.concatenate([resumed.process(spikes[171:]), resumed.flush()])
    assert same_spikes(np.concatenate([first, rest]), out)
    assert resumed.weights(1).tobytes() == full.weights(1).tobytes()
    with pytest.raises(ValueError, match="state '0.w' has shape"):
        network(2, 7, low, high).load_state_dict(part.state_dict())


def test_its_parameters_come_from_a_config_table_and_bad_values_are_named() -> None:
    table = {"n_inputs": 12, "layers": [{"neurons": 7, "eta": 0.01}, {"neurons": 3}]}
    p = build_params(DecolleParams, table, "test")
    assert [la.neurons for la in p.layers] == [7, 3]
    assert p.layers[0].eta == 0.01
    assert network(10, 12, *p.layers).layers[1]["w"].shape == (3, 7)
    with pytest.raises(ConfigError, match="unknown key 'tau'"):
        build_params(DecolleParams, {"n_inputs": 2, "layers": [{"tau": 1.0}]}, "test")
    with pytest.raises(ConfigError, match="tau_out_us must be > 0"):
        build_params(DecolleParams, {"n_inputs": 2, "layers": [{"tau_out_us": 0.0}]}, "test")
    with pytest.raises(ConfigError, match="quiet must be >= 0"):
        build_params(DecolleParams, {"n_inputs": 2, "layers": [{"quiet": -1.0}]}, "test")
    with pytest.raises(ConfigError, match="feedback"):
        build_params(DecolleParams, {"n_inputs": 2, "layers": [{"feedback": "aligned"}]}, "test")
    with pytest.raises(ConfigError, match="floor must be < threshold"):
        build_params(DecolleParams, {"n_inputs": 2, "layers": [{"floor": 1.0, "threshold": 1.0}]}, "test")


def test_the_activity_regularisers_lift_a_silent_layer_and_quiet_a_busy_one() -> None:
    # A layer whose weights keep every membrane below the floor learns nothing from its readout (it never
    # fires); the quiet regulariser raises its weights. A layer that fires at every input spike is calmed by
    # the busy one. The exact gradients are the reference test's; this is their sign, on a fixed case.
    rng = np.random.default_rng(6)
    spikes = spikes_of(np.sort(rng.integers(0, 2000, 300)), rng.integers(0, 5, 300))
    labels = labels_of(*[(k * 400, k % 2, 1) for k in range(5)])
    base = {"neurons": 4, "tau_mem_us": 50.0, "tau_out_us": 50.0, "w_std": 0.05, "eta": 0.01}
    for w_mean, reg, sign in ((-0.5, {"quiet": 1.0, "floor": 0.2}, 1.0), (2.0, {"busy": 1.0}, -1.0)):
        plain = network(2, 5, DecolleLayer(**base, w_mean=w_mean))
        regular = network(2, 5, DecolleLayer(**base, w_mean=w_mean, **reg))
        for net in (plain, regular):
            net.add_labels(labels)
            net.process(spikes)
            net.flush()
        assert sign * (regular.weights(0).sum() - plain.weights(0).sum()) > 1.0


def test_freezing_mid_segment_keeps_exactly_the_steps_taken_before_it() -> None:
    # The steps of a training segment wait, factored, until the segment closes; a freeze must fix them
    # where they stand: later spikes (which still move the presynaptic traces) change nothing.
    rng = np.random.default_rng(6)
    spikes = spikes_of(np.sort(rng.integers(0, 3000, 400)), rng.integers(0, 6, 400))
    layer = DecolleLayer(neurons=4, tau_mem_us=400.0, tau_out_us=300.0, w_mean=0.4, eta=0.05, quiet=0.3, busy=0.2)
    frozen, cut = network(2, 6, layer), network(2, 6, layer)
    for net in (frozen, cut):
        net.add_labels(labels_of((0, 1, 1)))
        net.process(spikes[:250])
    frozen.freeze()
    frozen.process(spikes[250:])
    frozen.flush()
    cut.flush()
    assert not np.array_equal(cut.weights(0), network(2, 6, layer).weights(0))  # it learnt before the freeze
    assert frozen.weights(0).tobytes() == cut.weights(0).tobytes()


def test_a_silence_of_thousands_of_time_constants_inside_a_segment_leaves_the_exact_gradient() -> None:
    # A static scene sends no events while its label holds: the decay over the gap underflows to 0, and
    # the factored traces must not turn that into 1 / 0.
    rng = np.random.default_rng(7)
    t = np.concatenate([np.sort(rng.integers(0, 300, 60)), 10**9 + np.sort(rng.integers(0, 300, 60))])
    spikes = spikes_of(t, rng.integers(0, 4, 120))
    labels = labels_of((0, 1, 1))
    layer = DecolleLayer(neurons=3, tau_mem_us=20.0, tau_out_us=30.0, w_mean=0.5, w_std=0.4, eta=0.05, quiet=0.3)
    net = network(2, 4, layer)
    ref_out, w_ref = reference_of(net, 0, spikes, labels)
    net.add_labels(labels)
    out = np.concatenate([net.process(spikes), net.flush()])
    assert np.isfinite(net.weights(0)).all()
    np.testing.assert_allclose(net.weights(0), w_ref, rtol=1e-9, atol=1e-9)
    assert [(int(s["t"]), int(s["c"])) for s in out] == ref_out
