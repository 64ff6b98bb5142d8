"""The parts of ``spikestream sweep`` that need no Ray: TOML written back, a phase's own seed, the curve
listeners of the evaluate node."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import numpy as np

from nodes.evaluation import node as evaluation
from nodes.sources.phased import PhasedSource, StreamParams
from nodes.sweep.toml_text import toml_document, toml_value
from pipeline.events import prediction_dtype
from pipeline.message import PREDICTIONS, Message
from pipeline.node import NodeContext
from pipeline.overrides import apply_overrides


def test_the_demo_graph_written_back_as_toml_reads_the_same() -> None:
    raw = tomllib.loads(resources.files("nodes").joinpath("demo.toml").read_text())
    raw = apply_overrides(raw, ["nodes.stdp.layers[0].a_minus=-1e-05", 'nodes.digits.phases[0].name="a \\"b\\""'], "x")
    assert tomllib.loads(toml_document(raw, "a header\nof two lines")) == raw


def test_values_given_to_set_parse_back_to_themselves() -> None:
    for value in (0.1, -2.5e-07, 3, True, "x y", [1, 2.0], [{"split": "train[:5]", "seed": 3}], np.float64(0.25)):
        assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value


class _Orders(PhasedSource):
    """A dataset of 100 samples that records the sample order of each pass and streams nothing."""

    width = height = 4
    splits = ("train",)

    def __init__(self, seed: int, phases: tuple[dict[str, Any], ...]) -> None:
        super().__init__("src", StreamParams(seed=seed, phases=phases), NodeContext(name="src", graph="g"))
        self.orders: list[list[int]] = []

    def load_split(self, split: str) -> tuple[Any, np.ndarray]:
        return None, np.zeros(100, np.int64)

    def chunks(self, split: str, order: np.ndarray, t0: int, train: bool) -> Iterator[Any]:
        self.orders.append(order.tolist())
        return iter(())


def _orders(seed: int, phases: tuple[dict[str, Any], ...]) -> list[list[int]]:
    src = _Orders(seed, phases)

    async def play() -> None:
        await src.start()
        async for _ in src.produce():
            pass

    asyncio.run(play())
    return src.orders


def test_a_phase_with_its_own_seed_plays_the_same_samples_whatever_the_source_seed() -> None:
    phases = ({"split": "train[:60]"}, {"split": "train[60:]", "samples": 20, "classifier": False, "seed": 7})
    one, two = _orders(1, phases), _orders(2, phases)
    assert one[0] != two[0]  # the learning phase follows the source's seed
    assert one[1] == two[1]  # the validation phase its own
    assert set(one[1]) <= set(range(60, 100))
    without = ({"split": "train[:60]"}, {"split": "train[60:]", "samples": 20, "classifier": False})
    assert _orders(1, without)[1] != _orders(2, without)[1]


def test_the_evaluate_node_tells_its_curve_listeners_every_new_point() -> None:
    heard: list[tuple[str, int, float, float]] = []
    node = evaluation.EvaluationNode(
        "ev", evaluation.EvaluationConfig(classes=10, window=4, curve_every=2), NodeContext(name="ev", graph="g")
    )
    records = np.zeros(5, dtype=prediction_dtype(10))
    records["decision"], records["train"], records["truth"] = 1, 1, 3
    records["label"] = [3, 0, 3, 3, 0]
    evaluation.curve_listeners.append(lambda *point: heard.append(point))
    try:
        asyncio.run(node.process(Message(PREDICTIONS, data=records[:3])))
        asyncio.run(node.process(Message(PREDICTIONS, data=records[3:])))
    finally:
        evaluation.curve_listeners.clear()
    assert heard == [("ev", 2, 0.5, 0.5), ("ev", 4, 0.75, 0.75)]


def test_the_sweep_page_keeps_a_bounded_curve_and_ends_on_the_written_table() -> None:
    from nodes.sweep.board import MAX_POINTS, SweepBoard
    from nodes.sweep.report import DONE, STOPPED, Row

    board = SweepBoard("s", "validation_accuracy", ["eta"])
    config = {"eta": 0.1, "seed": 2, "__sweep_file": "s.toml", "__out": "out"}
    for k in range(3 * MAX_POINTS):
        board.reported("t1", config, {"samples": k, "window_accuracy": k / (3 * MAX_POINTS), "final": False})
    board.reported("t2", config | {"eta": 0.2}, {"samples": 5, "window_accuracy": 0.5, "final": False})
    live = board.status()
    assert live["trials"]["t1"]["params"] == {"eta": 0.1}
    assert live["trials"]["t1"]["seed"] == 2
    curve = live["trials"]["t1"]["curve"]
    assert len(curve) <= MAX_POINTS
    assert curve[0] == [0, 0.0]
    assert curve == sorted(curve)  # thinned, never reordered
    assert live["trials"]["t1"]["status"] == "running"
    assert not live["ended"]
    rows = [
        Row("t1", DONE, 2, {"eta": 0.1}, 0.75, {"events_per_s": 1e5}),
        Row("t2", STOPPED, 2, {"eta": 0.2}, None, {}),
    ]
    board.finish(rows, rows[0], {"test_accuracy": 0.7})
    end = board.status()
    assert end["ended"]
    assert end["trials"]["t1"]["status"] == DONE
    assert end["trials"]["t1"]["figures"]["validation_accuracy"] == 0.75
    assert end["trials"]["t2"]["status"] == STOPPED
    assert end["best"] == {"trial_id": "t1", "metric": 0.75}
    assert end["test_accuracy"] == 0.7
