"""The stdp node with ``threads`` > 1: its layers run pipelined over threads and compute exactly what one
thread computes (spikes, weights, counters, the order of everything it sends), its background outputs
reach the graph without waiting for another input, and its threads end with it."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from graphs import DIGIT_LAYERS, encoder, font_digits, graph, stdp, write_graph
from test_stdp import SMALL_SHAPE, assert_same_state, random_spikes, small_layers
from typing_extensions import override

from nodes.classifier.kernel import I_N_INPUTS
from nodes.stdp import Network, network
from nodes.stdp.node import StdpConfig, StdpNode
from nodes.stdp.pipelined import PipelinedNetwork
from nodes.stdp.split import default_split, layer_costs
from pipeline.checkpoint import generations, load_state
from pipeline.config import load_graph
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE
from pipeline.message import CONTROL, EVENTS, SPIKES, Message, control_message, events_message, labels_message
from pipeline.node import Node, NodeContext, Source
from pipeline.runner import run_graph

CUTS = (0, 1, 2, 300, 301, 1177, 1900, 2600, 2601, 3700, 4000)  # uneven batches, some of one event


def stream_messages(seed: int) -> list[Message]:
    """A random event stream cut into uneven batches, a label before every other batch, learning switched
    off after the fourth batch and on again after the seventh."""
    spikes = random_spikes(CUTS[-1], SMALL_SHAPE, seed)
    events = np.zeros(len(spikes), EVENT_DTYPE)
    events["t"], events["x"], events["y"], events["p"] = spikes["t"], spikes["x"], spikes["y"], spikes["c"]
    msgs: list[Message] = []
    for i, (a, b) in enumerate(itertools.pairwise(CUTS)):
        if i % 2 == 0:
            msgs.append(labels_message(np.array([(int(events["t"][a]), i % 3, 1)], LABEL_DTYPE)))
        if i == 4:
            msgs.append(control_message("freeze", scope="features"))
        if i == 7:
            msgs.append(control_message("unfreeze"))
        msgs.append(events_message(events[a:b], SMALL_SHAPE[2], SMALL_SHAPE[1]))
    return msgs


def make_node(threads: int = 1, split: Sequence[int] = (), seed: int = 0) -> StdpNode:
    config = StdpConfig(input=SMALL_SHAPE, layers=tuple(small_layers()), seed=seed, threads=threads, split=tuple(split))
    return StdpNode("stdp", config, NodeContext("stdp", "g"))


async def feed(node: StdpNode, msgs: Sequence[Message], *, ask_ready: bool = False) -> list[Message]:
    """What the node sends for ``msgs``, in order, as the runner would send it (control messages after
    what ``control`` returns); ``ask_ready`` also takes background outputs between messages."""
    sent: list[Message] = []
    for msg in msgs:
        if msg.kind == CONTROL:
            sent += [*node.control(msg), msg]
            continue
        sent += await node.process(msg)
        if ask_ready and node.background_pending():
            sent += await node.background_ready()
    return sent


def assert_same_messages(got: Sequence[Message], want: Sequence[Message]) -> None:
    assert [m.kind for m in got] == [m.kind for m in want]
    for g, w in zip(got, want, strict=True):
        if g.kind == CONTROL:
            assert g.command == w.command
        else:
            assert g.data is not None
            assert w.data is not None
            assert np.array_equal(g.data, w.data)


def one_thread_run(msgs: Sequence[Message]) -> tuple[list[Message], dict[str, np.ndarray]]:
    async def go() -> tuple[list[Message], dict[str, np.ndarray]]:
        node = make_node()
        sent = await feed(node, msgs)
        sent += await node.flush()
        return sent, node.snapshot()

    return asyncio.run(go())


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stdp-layers-")]


@pytest.mark.parametrize(("threads", "split"), [(2, ()), (2, (1,)), (3, ()), (3, (2, 4))])
@pytest.mark.parametrize("ask_ready", [False, True])
def test_a_threaded_node_sends_what_one_thread_sends_and_learns_the_same_weights(
    threads: int, split: tuple[int, ...], ask_ready: bool
) -> None:
    msgs = stream_messages(seed=threads)
    want, want_state = one_thread_run(msgs)
    assert sum(m.kind == SPIKES for m in want) > 3  # the stream makes the top layer fire

    async def go() -> tuple[list[Message], dict[str, np.ndarray]]:
        node = make_node(threads, split)
        sent = await feed(node, msgs, ask_ready=ask_ready)
        sent += await node.flush()
        state = node.snapshot()
        await node.stop()
        return sent, state

    got, state = asyncio.run(go())
    assert_same_messages(got, want)
    assert_same_state(state, want_state)
    assert not worker_threads()


def test_the_pipeline_alone_computes_what_the_network_does_and_switches_learning_in_place() -> None:
    spikes = random_spikes(CUTS[-1], SMALL_SHAPE, 5)
    batches = [spikes[a:b] for a, b in itertools.pairwise(CUTS)]
    one = Network(SMALL_SHAPE, small_layers(), seed=0)
    want = []
    for i, batch in enumerate(batches):
        one.learning = i not in (3, 4)
        want.append(one.process(batch))
    net = Network(SMALL_SHAPE, small_layers(), seed=0)
    with PipelinedNetwork[int](net, (2, 4), depth=1) as pipe:
        got: list[tuple[int, np.ndarray | None]] = []
        for i, batch in enumerate(batches):
            pipe.set_learning(i not in (3, 4))  # a marker between the batches, for every group
            pipe.submit(batch, i)
            if i == 5:
                pipe.pass_on(-1)
            got += pipe.take()
        pipe.wait()
        got += pipe.take()
        assert_same_state(pipe.state_dict(), one.state_dict())
    assert [tag for tag, _ in got] == [0, 1, 2, 3, 4, 5, -1, 6, 7, 8, 9]
    outputs = [out for _, out in got if out is not None]
    assert all(np.array_equal(g, w) for g, w in zip(outputs, want, strict=True))


def test_a_checkpoint_mid_stream_restores_into_one_thread_that_continues_identically() -> None:
    msgs = stream_messages(seed=7)
    half = len(msgs) // 2
    want, want_state = one_thread_run(msgs)

    async def go() -> tuple[list[Message], dict[str, np.ndarray]]:
        threaded = make_node(threads=3)
        sent = await feed(threaded, msgs[:half])
        assert threaded.background_pending()  # batches still in the pipeline: the snapshot must wait for them
        saved = {k: v.copy() for k, v in threaded.snapshot().items()}
        sent += await threaded.flush()
        await threaded.stop()
        resumed = make_node(seed=99)  # other initial weights: everything must come from the checkpoint
        resumed.restore(saved)
        sent += await feed(resumed, msgs[half:])
        sent += await resumed.flush()
        return sent, resumed.snapshot()

    got, state = asyncio.run(go())
    assert_same_messages(got, want)
    assert_same_state(state, want_state)


def failing_layer(monkeypatch: pytest.MonkeyPatch, t_first: int, t_last: int) -> None:
    """Make layer 2 (the conv of 6 maps) raise on any batch whose spikes all lie in ``[t_first, t_last]``."""
    run_weighted = network._run_weighted

    def run(cols: network.Columns, layer: Any, learning: bool) -> network.Columns:
        t = cols[0]
        if layer.geometry.m == 6 and len(t) and t[0] >= t_first and t[-1] <= t_last:
            msg = "layer 2 broke"
            raise ArithmeticError(msg)
        return run_weighted(cols, layer, learning)

    monkeypatch.setattr(network, "_run_weighted", run)


def test_a_worker_exception_surfaces_on_the_next_call_in_its_place_and_the_stream_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spikes = random_spikes(CUTS[-1], SMALL_SHAPE, 5)
    batches = [spikes[a:b] for a, b in itertools.pairwise(CUTS)]
    failing_layer(monkeypatch, int(batches[5]["t"][0]), int(batches[5]["t"][-1]))
    one = Network(SMALL_SHAPE, small_layers(), seed=0)
    want = []
    for i, batch in enumerate(batches):
        if i == 5:
            with pytest.raises(ArithmeticError):
                one.process(batch)
        else:
            want.append(one.process(batch))
    with PipelinedNetwork[int](Network(SMALL_SHAPE, small_layers(), seed=0), (2,)) as pipe:
        for i in range(6):
            pipe.submit(batches[i], i)
        pipe.wait()
        got = pipe.take()  # the outputs before the failed batch
        with pytest.raises(ArithmeticError, match="layer 2 broke") as raised:
            pipe.take()
        assert "worker thread of layers 2 .. 4" in "".join(raised.value.__notes__)
        for i in range(6, len(batches)):
            pipe.submit(batches[i], i)
        pipe.wait()
        got += pipe.take()
        assert_same_state(pipe.state_dict(), one.state_dict())
        assert all(t.is_alive() for t in pipe._threads)
    assert [tag for tag, _ in got] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert all(np.array_equal(g, w) for (_, g), w in zip(got, want, strict=True))


def test_a_node_reports_a_worker_exception_once_and_sends_everything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    msgs = stream_messages(seed=4)
    bad = [m for m in msgs if m.kind == EVENTS][5].data
    assert bad is not None
    failing_layer(monkeypatch, int(bad["t"][0]), int(bad["t"][-1]))

    async def run(threads: int) -> tuple[list[Message], dict[str, np.ndarray], int]:
        node = make_node(threads)
        sent: list[Message] = []
        errors = 0
        for msg in [*msgs, None]:
            try:
                if msg is None:
                    sent += await node.flush()
                elif msg.kind == CONTROL:
                    sent += [*node.control(msg), msg]
                else:
                    sent += await node.process(msg)
            except ArithmeticError:
                errors += 1
        state = node.snapshot()
        await node.stop()
        return sent, state, errors

    want, want_state, want_errors = asyncio.run(run(1))
    got, state, errors = asyncio.run(run(2))
    assert errors == want_errors == 1
    assert_same_messages(got, want)
    assert_same_state(state, want_state)


def test_stopping_joins_the_worker_threads() -> None:
    async def go() -> None:
        node = make_node(threads=3)
        await node.process(stream_messages(seed=1)[1])
        assert len(worker_threads()) == 3
        assert all(t.daemon for t in worker_threads())
        await node.stop()

    asyncio.run(go())
    assert not worker_threads()


def test_the_default_split_balances_the_estimated_costs() -> None:
    layers = small_layers()
    costs = layer_costs(SMALL_SHAPE, layers)
    assert len(costs) == len(layers)
    assert default_split(SMALL_SHAPE, layers, 1) == ()
    assert default_split(SMALL_SHAPE, layers, 5) == (1, 2, 3, 4)
    (cut,) = default_split(SMALL_SHAPE, layers, 2)
    best = min(max(sum(costs[:c]), sum(costs[c:])) for c in range(1, 5))
    assert max(sum(costs[:cut]), sum(costs[cut:])) == best
    with pytest.raises(ValueError, match="threads must be in 1 .. 5"):
        StdpConfig(input=SMALL_SHAPE, layers=tuple(layers), threads=6)
    with pytest.raises(ValueError, match="split \\[3, 2\\] must list increasing layer indices"):
        StdpConfig(input=SMALL_SHAPE, layers=tuple(layers), threads=3, split=(3, 2))
    with pytest.raises(ValueError, match="must give 1 layer indices for threads = 2"):
        StdpConfig(input=SMALL_SHAPE, layers=tuple(layers), threads=2, split=(1, 2))


# -- in a graph ----------------------------------------------------------------------------------------------


class OneBatchThenWait(Source):
    """Sends one batch of events, then sends nothing more until the sink has its spikes (or 10 s pass)."""

    arrived: ClassVar[asyncio.Event | None] = None
    waited_s: ClassVar[float | None] = None

    @override
    async def produce(self) -> AsyncIterator[Message]:
        events = np.zeros(2000, EVENT_DTYPE)
        rng = np.random.default_rng(0)
        events["t"] = np.arange(2000)
        events["x"], events["y"], events["p"] = rng.integers(0, 12, 2000), rng.integers(0, 12, 2000), 1
        type(self).arrived = asyncio.Event()
        yield events_message(events, 12, 12)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            await asyncio.wait_for(type(self).arrived.wait(), 10)  # type: ignore[union-attr]
            type(self).waited_s = loop.time() - t0
        except TimeoutError:
            type(self).waited_s = None


class SpikesArrive(Node):
    """Tells the source when the first spikes arrive."""

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == SPIKES and OneBatchThenWait.arrived is not None:
            OneBatchThenWait.arrived.set()
        return ()


def test_background_outputs_reach_the_graph_without_a_following_input_message(tmp_path: Path) -> None:
    nodes = {
        "source": {"type": f"{__name__}:OneBatchThenWait"},
        "stdp": stdp(SMALL_SHAPE, [dict(layer) for layer in LAYER_TABLES], threads=2),
        "sink": {"type": f"{__name__}:SpikesArrive"},
    }
    doc = graph("hook", ["source -> stdp", "stdp -> sink"], nodes, transport="inproc", log_every_s=0)
    results = run_graph(load_graph(write_graph(tmp_path / "hook.toml", doc)))
    assert results["errors"] == {}
    assert OneBatchThenWait.waited_s is not None, "the spikes waited for another input (or the end)"
    assert results["nodes"]["sink"]["counters"]["events_in"] > 0


LAYER_TABLES = (
    {"type": "conv", "maps": 4, "kernel": 3, "th_learn": 2.0, "th_inf": 2.0, "r_learn": 1, "a_minus": -0.02},
    {"type": "pool", "size": 2},
    {"type": "fc", "neurons": 10, "th_learn": 3.0, "th_inf": 2.1, "a_minus": -0.01},
)


def digits_graph(ipc_dir: Path, transport: str, threads: int) -> dict[str, Any]:
    """Font digits taught, then tested with learning off, through one stdp node with ``threads``, with a
    consistent-cut checkpoint every 50 ms."""
    nodes = {
        "digits": font_digits(40, 20, seed=3, batch=1500),
        "encoder": encoder(34),
        "stdp": stdp((2, 34, 34), DIGIT_LAYERS, seed=2, threads=threads),
        "classifier": {"type": "classifier", "readout": "assignment", "classes": 10, "inputs": 40},
        "evaluate": {"type": "evaluate", "classes": 10, "log_every": 0},
    }
    links = ["digits -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate"]
    name = f"digits-{transport}-{threads}"
    return graph(name, links, nodes, transport=transport, ipc_dir=str(ipc_dir), log_every_s=0, checkpoint_s=0.05)


@pytest.mark.timeout(60)
def test_a_graph_with_threads_2_gives_the_results_of_threads_1_in_process_and_over_ipc(tmp_path: Path) -> None:
    results = {}
    for transport, threads in (("inproc", 1), ("inproc", 2), ("ipc", 2)):
        folder = tmp_path / f"{transport}-{threads}"
        folder.mkdir()
        path = write_graph(folder / "graph.toml", digits_graph(folder, transport, threads))
        results[transport, threads] = run_graph(load_graph(path), state_dir=str(folder / "state"))
    one = results["inproc", 1]
    assert one["nodes"]["stdp"]["results"]["stdp_layers"][-1]["learning_spikes"] > 0
    for key in (("inproc", 2), ("ipc", 2)):
        two = results[key]
        assert two["errors"] == {}
        for figure in ("test_accuracy", "train_accuracy", "confusion"):
            assert two[figure] == one[figure], (key, figure)
        for node in ("stdp", "classifier"):
            assert two["nodes"][node]["results"] == one["nodes"][node]["results"], (key, node)
            for counter in ("events_in", "events_out", "errors"):  # (messages: as many as markers came)
                assert two["nodes"][node]["counters"][counter] == one["nodes"][node]["counters"][counter], counter
        # every checkpoint of the threaded node was taken drained: each layer has taken in all that the layer
        # below it sent, and the classifier's cut holds every spike the stdp node had sent before the marker
        state_dir = tmp_path / f"{key[0]}-2" / "state"
        kept = generations(state_dir, "stdp")
        assert kept
        for generation in kept:
            state = load_state(state_dir / f"stdp.g{generation:09d}.npz")
            counters = [state[f"{i}.counters"] for i in range(len(DIGIT_LAYERS))]
            assert all(low[2] == high[0] for low, high in itertools.pairwise(counters))
            if generation in generations(state_dir, "classifier"):
                clf = load_state(state_dir / f"classifier.g{generation:09d}.npz")
                assert int(clf["istate"][I_N_INPUTS]) == counters[-1][2], generation  # spikes taken = sent
