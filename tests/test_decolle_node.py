"""The decolle node: built from its table, maps events and spikes to input channels, passes labels on."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nodes.decolle.network import DecolleNetwork
from nodes.decolle.node import DecolleConfig, DecolleNode
from pipeline.config import ConfigError, build_params
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE, SPIKE_DTYPE
from pipeline.message import FREEZE, LABELS, SPIKES, Message, control_message, events_message, labels_message
from pipeline.node import NodeContext

TABLE = {
    "input": [2, 3, 4],
    "reset": "label",
    "classes": 2,
    "seed": 5,
    "layers": [{"neurons": 6, "w_mean": 0.6, "w_std": 0.2, "eta": 0.05, "tau_mem_us": 50.0, "tau_out_us": 50.0}],
}


def node_of(table: dict[str, object]) -> DecolleNode:
    config = build_params(DecolleConfig, table, "[nodes.decolle]")
    return DecolleNode("decolle", config, NodeContext("decolle", "g"))


def test_events_reach_the_layer_as_the_flat_channel_and_labels_pass_on_unchanged() -> None:
    rng = np.random.default_rng(1)
    events = np.zeros(300, EVENT_DTYPE)
    events["t"] = np.sort(rng.integers(0, 2000, 300))
    events["x"], events["y"], events["p"] = rng.integers(0, 4, 300), rng.integers(0, 3, 300), rng.integers(0, 2, 300)
    labels = np.array([(0, 1, 1), (1000, 0, 1)], LABEL_DTYPE)
    node = node_of(TABLE)

    async def go() -> list[Message]:
        out = list(await node.process(labels_message(labels)))
        out += await node.process(events_message(events[:120], 4, 3))
        out += node.control(control_message(FREEZE, scope="features"))
        out += await node.process(events_message(events[120:], 4, 3))
        out += await node.flush()
        return out

    out = asyncio.run(go())
    assert out[0].kind == LABELS
    assert out[0].data is not None
    assert out[0].data.tobytes() == labels.tobytes()
    got = np.concatenate([m.data for m in out if m.kind == SPIKES and m.data is not None])
    # the same stream as flat spikes, into the network directly: the same output spikes, the same weights
    net = DecolleNetwork(node.config.params())
    flat = np.zeros(300, SPIKE_DTYPE)
    flat["t"] = events["t"]
    flat["c"] = (events["p"].astype(np.int64) * 3 + events["y"]) * 4 + events["x"]
    net.add_labels(labels)
    first = net.process(flat[:120])
    net.freeze()
    want = np.concatenate([first, net.process(flat[120:]), net.flush()])
    assert len(want) > 0
    assert got["t"].tobytes() == want["t"].tobytes()
    assert got["c"].tobytes() == want["c"].tobytes()
    assert node.net.weights(0).tobytes() == net.weights(0).tobytes()
    assert not node.net.learning
    state = node.snapshot()
    other = node_of(TABLE | {"seed": 6})
    other.restore(state)
    assert other.net.weights(0).tobytes() == node.net.weights(0).tobytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reset": "none"}, "reset"),
        ({"input": [0, 3, 4]}, "input must be"),
        ({"layers": [{"neurons": 0}]}, "neurons must be in 1 .. 65535"),
    ],
)
def test_bad_decolle_configs_are_refused_with_the_reason(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_params(DecolleConfig, TABLE | change, "[nodes.decolle]")


def test_its_stream_facts_check_the_input_shape_and_announce_the_top_layer() -> None:
    config = build_params(DecolleConfig, TABLE, "[nodes.decolle]")
    assert DecolleNode.stream_facts(config, {"shape": (2, 3, 4)})["shape"] == (6, 1, 1)
    with pytest.raises(ValueError, match="spikes of shape"):
        DecolleNode.stream_facts(config, {"shape": (1, 3, 4)})


def test_a_conv_top_layer_sends_each_spike_as_its_map_and_position() -> None:
    layers = [{"type": "conv", "maps": 2, "kernel": 2, "w_mean": 0.7, "w_std": 0.2, "tau_mem_us": 50.0}]
    node = node_of(TABLE | {"layers": layers})
    assert DecolleNode.stream_facts(node.config, {})["shape"] == (2, 2, 3)  # maps, 3-2+1, 4-2+1
    rng = np.random.default_rng(2)
    events = np.zeros(300, EVENT_DTYPE)
    events["t"] = np.sort(rng.integers(0, 2000, 300))
    events["x"], events["y"], events["p"] = rng.integers(0, 4, 300), rng.integers(0, 3, 300), rng.integers(0, 2, 300)

    async def go() -> list[Message]:
        await node.process(labels_message(np.array([(0, 1, 1)], LABEL_DTYPE)))
        return [*await node.process(events_message(events, 4, 3)), *await node.flush()]

    got = np.concatenate([m.data for m in asyncio.run(go()) if m.kind == SPIKES and m.data is not None])
    net = DecolleNetwork(node_of(TABLE | {"layers": layers}).config.params())
    flat = np.zeros(300, SPIKE_DTYPE)
    flat["t"] = events["t"]
    flat["c"] = (events["p"].astype(np.int64) * 3 + events["y"]) * 4 + events["x"]
    net.add_labels(np.array([(0, 1, 1)], LABEL_DTYPE))
    want = net.process(flat)
    assert len(got) == len(want) > 0
    assert got["c"].max() < 2
    np.testing.assert_array_equal((got["c"].astype(np.int64) * 2 + got["y"]) * 3 + got["x"], want["c"])
