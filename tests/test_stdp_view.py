"""What a dashboard sees of an STDP network (``nodes.stdp.view``): spikes per map counted only once asked
for and changing no result, and the first layer's kernels as 8-bit images."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from nodes.stdp import ConvParams, FcParams, Network, PoolParams, network
from nodes.stdp.node import StdpNode
from nodes.stdp.view import kernels_image, network_view
from pipeline.events import SPIKE_DTYPE

SHAPE = (2, 12, 12)


def layers() -> list:
    return [
        ConvParams(maps=4, kernel=3, th_learn=2.0, th_inf=2.0, r_learn=1, r_inf=0, a_minus=-0.02),
        PoolParams(size=2),
        FcParams(neurons=6, th_learn=3.0, th_inf=2.1, a_minus=-0.01),
    ]


def spikes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.zeros(n, SPIKE_DTYPE)
    s["t"] = np.sort(rng.integers(0, 10 * n + 1, n))
    s["c"] = rng.integers(0, SHAPE[0], n)
    s["y"] = rng.integers(0, SHAPE[1], n)
    s["x"] = rng.integers(0, SHAPE[2], n)
    return s


@pytest.mark.parametrize("fold", [2, 256])  # folded into the counts every 2 batches, or still pending
def test_counting_spikes_per_map_changes_no_result_and_counts_every_layers_output(
    fold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(network, "MAP_FOLD", fold)
    watched, plain = Network(SHAPE, layers(), seed=3), Network(SHAPE, layers(), seed=3)
    assert watched.map_spikes() is None  # nothing is counted until a viewer asks
    watched.count_maps()
    expected = [np.zeros(4, np.int64), None, np.zeros(6, np.int64)]
    for seed in range(5):
        batch = spikes(3000, seed)
        outs = watched.process_all_layers(batch)
        for a, b in zip(outs, plain.process_all_layers(batch), strict=True):
            assert np.array_equal(a, b)
        for i in (0, 2):
            expected[i] += np.bincount(outs[i]["c"], minlength=expected[i].shape[0])
    for a, b in zip(watched.state_dict().values(), plain.state_dict().values(), strict=True):
        assert np.array_equal(a, b)
    counted = watched.map_spikes()
    assert counted is not None
    assert counted[1] is None  # a pool has no maps of its own
    assert np.array_equal(counted[0], expected[0])
    assert np.array_equal(counted[2], expected[2])
    assert counted[0].sum() > 0


def test_the_view_shows_learning_layers_and_the_first_kernels_only_when_full() -> None:
    net = Network(SHAPE, layers(), seed=1)
    net.learning = False
    light = network_view(net, full=False)
    assert light["learning"] is False
    assert "kernels" not in light
    assert [(row["layer"], row["kind"], len(row["spikes"])) for row in light["layers"]] == [
        (0, "conv", 4),
        (2, "fc", 6),
    ]
    net.process(spikes(2000, 0))
    full = network_view(net, full=True)
    assert sum(full["layers"][0]["spikes"]) > 0  # counted since the first view
    k = full["kernels"]
    assert (k["maps"], k["channels"], k["height"], k["width"]) == (4, 2, 3, 3)
    levels = np.frombuffer(base64.b64decode(k["pixels"]), np.uint8).reshape(4, 2, 3, 3)
    weights = net.state_dict()["0.weight"]
    assert np.abs(levels / 255.0 - weights).max() <= 0.5 / 255 + 1e-6


def test_kernel_images_clip_to_the_weight_range() -> None:
    image = kernels_image(np.array([-0.5, 0.0, 0.5, 1.0, 2.0]).reshape(1, 1, 1, 5))
    assert list(base64.b64decode(image["pixels"])) == [0, 0, 128, 255, 255]


@pytest.mark.parametrize("fold", [2, 256])
def test_a_node_in_threads_shows_the_spikes_per_map_and_learning_of_a_node_in_one(
    fold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layers run in worker threads (threads = 2) count into the same totals, read once drained."""
    from test_stdp_threads import feed, make_node, stream_messages

    monkeypatch.setattr(network, "MAP_FOLD", fold)
    views = []
    for threads in (1, 2):
        node = make_node(threads)
        assert node.watch(full=False)["layers"][0]["spikes"] == [0, 0, 0, 0]  # counting starts here

        async def run(node: StdpNode = node) -> None:
            await feed(node, stream_messages(4))
            await node.flush()
            await node.stop()

        asyncio.run(run())
        views.append(node.watch(full=True))
    one, two = views
    assert one == two
    assert one["learning"] is True  # (switched off and on again mid-stream)
    assert sum(one["layers"][0]["spikes"]) > 0
    assert one["kernels"]["maps"] == 4
