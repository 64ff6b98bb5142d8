"""The learning stages as graph nodes: checkpoint/restore through disk continues bit-identically,
transport batch sizes change nothing, and a geometry mismatch is a clear error."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest
from graphs import DIGIT_LAYERS, encoder, font_digits, graph, stdp, write_graph

from nodes.classifier.node import ClassifierConfig, ClassifierNode
from nodes.stdp import ConvParams, FcParams, PoolParams, TraceConvParams, TraceFcParams
from nodes.stdp.node import StdpConfig, StdpNode
from pipeline.checkpoint import load_state, save_state
from pipeline.errors import SpikestreamError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE
from pipeline.message import (
    PREDICTIONS,
    SPIKES,
    Message,
    control_message,
    events_message,
    labels_message,
)
from pipeline.node import NodeContext

LAYERS = (
    ConvParams(maps=4, kernel=3, th_learn=2.0, th_inf=1.5, a_minus=-0.02),
    PoolParams(size=2),
    FcParams(neurons=12, th_learn=3.0, th_inf=2.0, a_minus=-0.01),
)


def make_nodes() -> tuple[StdpNode, ClassifierNode]:
    stdp = StdpNode("stdp", StdpConfig(input=(2, 10, 10), layers=LAYERS, seed=3), NodeContext("stdp", "g"))
    clf = ClassifierNode(
        "clf", ClassifierConfig(classes=3, inputs=12, threshold=2.0, eta=0.05, seed=4), NodeContext("clf", "g")
    )
    return stdp, clf


def labelled_stream(seed: int, samples: int = 24, per_sample: int = 150):
    """Three classes, each a blob at its own place, both polarities; one label per sample."""
    rng = np.random.default_rng(seed)
    events, labels = [], []
    t = 0
    for _ in range(samples):
        cls = int(rng.integers(0, 3))
        e = np.zeros(per_sample, EVENT_DTYPE)
        e["t"] = t + np.sort(rng.integers(0, 1000, per_sample))
        e["x"] = np.clip(rng.normal(2 + 3 * cls, 1.2, per_sample), 0, 9).astype(np.uint16)
        e["y"] = np.clip(rng.normal(5, 2, per_sample), 0, 9).astype(np.uint16)
        e["p"] = rng.integers(0, 2, per_sample)
        labels.append((t, cls, 1))
        events.append(e)
        t += 1000
    return np.concatenate(events), np.array(labels, dtype=LABEL_DTYPE)


def messages(events: np.ndarray, labels: np.ndarray, batch: int) -> list[Message]:
    """Labels first (each before its sample's events), events in batches of ``batch``."""
    out: list[Message] = [labels_message(labels)]
    out += [events_message(events[i : i + batch], 10, 10) for i in range(0, len(events), batch)]
    return out


def run(stdp: StdpNode, clf: ClassifierNode, msgs: list[Message], flush: bool = True) -> list[np.ndarray]:
    async def go() -> list[np.ndarray]:
        preds = []
        for msg in msgs:
            if msg.kind == "control":
                stdp.control(msg)
                clf.control(msg)
                continue
            for mid in await stdp.process(msg):
                for out in await clf.process(mid):
                    if out.kind == PREDICTIONS:
                        preds.append(out.data)
        if flush:
            preds += [m.data for m in await clf.flush()]
        return preds

    return asyncio.run(go())


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def preds_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    ca, cb = np.concatenate(a), np.concatenate(b)
    return len(ca) == len(cb) and all(np.array_equal(ca[f], cb[f]) for f in ca.dtype.names)


def test_checkpoint_through_disk_continues_bit_identically(tmp_path):
    events, labels = labelled_stream(0)
    half = len(events) // 2
    first = messages(events[:half], labels[labels["t"] <= events["t"][half - 1]], 97)
    second = messages(events[half:], labels[labels["t"] > events["t"][half - 1]], 97)

    whole_stdp, whole_clf = make_nodes()
    whole = run(whole_stdp, whole_clf, first, flush=False) + run(whole_stdp, whole_clf, second)

    a_stdp, a_clf = make_nodes()
    # stopped mid-sample by a signal: the runner flushes every node with ``interrupted`` set, then
    # checkpoints; the classifier must keep its open segment for the rest of the stream
    a_stdp.interrupted = a_clf.interrupted = True
    part = run(a_stdp, a_clf, first, flush=True)
    save_state(tmp_path / "stdp.npz", a_stdp.snapshot())
    save_state(tmp_path / "clf.npz", a_clf.snapshot())
    b_stdp, b_clf = make_nodes()
    b_stdp.restore(load_state(tmp_path / "stdp.npz"))
    b_clf.restore(load_state(tmp_path / "clf.npz"))
    part += run(b_stdp, b_clf, second)

    assert preds_equal(whole, part)
    assert states_equal(whole_stdp.snapshot(), b_stdp.snapshot())
    assert states_equal(whole_clf.snapshot(), b_clf.snapshot())
    assert whole_stdp.results()["stdp_layers"][0]["learning_spikes"] > 0  # it did learn something


@pytest.mark.parametrize("batches", [(1, 7), (64, 1000), (5, 333)])
def test_transport_batch_size_changes_nothing(batches):
    events, labels = labelled_stream(1)
    results = []
    for batch in batches:
        stdp, clf = make_nodes()
        preds = run(stdp, clf, messages(events, labels, batch))
        results.append((preds, stdp.snapshot(), clf.snapshot()))
    (p0, s0, c0), (p1, s1, c1) = results
    assert preds_equal(p0, p1)
    assert states_equal(s0, s1)
    assert states_equal(c0, c1)


def test_an_empty_batch_changes_nothing():
    """The nodes load their kernels by running an empty batch when they are made (so that a camera started
    with the graph does not wait for it); that must be a no-op at any point of the stream, not only fresh."""
    from nodes.encoder.node import EncoderConfig, EncoderNode
    from pipeline.events import SPIKE_DTYPE

    stdp, clf = make_nodes()
    events, labels = labelled_stream(5, samples=6)
    run(stdp, clf, messages(events[:500], labels, 100), flush=False)  # mid-stream: open segment, queued labels
    enc = EncoderNode("enc", EncoderConfig(output=(2, 10, 10), ba_window_us=2000), NodeContext("enc", "g"))
    asyncio.run(enc.process(events_message(events[:300], 10, 10)))
    readout = ClassifierNode("ro", ClassifierConfig(readout="assignment", classes=3, inputs=12), NodeContext("ro", "g"))
    readout.clf.add_labels(labels)
    for out in asyncio.run(stdp.process(events_message(events[500:1500], 10, 10))):
        readout.clf.process(out.data)
    assert readout.clf.counters["inputs"] > 0
    before = (stdp.snapshot(), clf.snapshot(), enc.snapshot(), readout.snapshot())
    assert len(stdp.net.process(np.zeros(0, SPIKE_DTYPE))) == 0
    assert len(clf.clf.process(np.zeros(0, SPIKE_DTYPE))) == 0
    assert len(readout.clf.process(np.zeros(0, SPIKE_DTYPE))) == 0
    assert enc.transform is not None
    assert len(enc.transform(np.zeros(0, EVENT_DTYPE))) == 0
    after = (stdp.snapshot(), clf.snapshot(), enc.snapshot(), readout.snapshot())
    assert all(states_equal(a, b) for a, b in zip(before, after, strict=True))


def test_classifier_node_builds_each_readout_with_its_own_default_step():
    from nodes.classifier import DeltaReadout, LabelAssignmentReadout, SupervisedClassifier

    def node(**kw):
        return ClassifierNode("c", ClassifierConfig(classes=3, inputs=12, **kw), NodeContext("c", "g")).clf

    assert isinstance(node(), SupervisedClassifier)
    assert node().params.eta == 0.01
    assert node(eta=0.05).params.eta == 0.05
    delta = node(readout="delta")
    assert isinstance(delta, DeltaReadout)
    assert delta.params.eta == 0.3
    assert node(readout="delta", eta=0.1).params.eta == 0.1
    assert isinstance(node(readout="assignment"), LabelAssignmentReadout)
    with pytest.raises(ValueError, match="in \\(0, 2\\)"):
        node(readout="delta", eta=3.0)


def test_freeze_stops_feature_learning_only_in_scope():
    events, labels = labelled_stream(2)
    stdp, clf = make_nodes()
    before = stdp.snapshot()
    run(stdp, clf, [control_message("freeze", scope="features"), *messages(events, labels, 100)])
    after = stdp.snapshot()
    weights = [k for k in before if "weight" in k or k.endswith(".w")]
    assert weights
    assert all(np.array_equal(before[k], after[k]) for k in weights)
    assert clf.clf.learning  # the classifier's scope was not frozen
    events2, labels2 = labelled_stream(3)
    events2["t"] += 10**6
    labels2["t"] += 10**6
    run(stdp, clf, [control_message("unfreeze", scope="features"), *messages(events2, labels2, 100)])
    assert not all(np.array_equal(before[k], stdp.snapshot()[k]) for k in weights)


def test_geometry_mismatch_is_a_clear_error():
    stdp, _ = make_nodes()
    msg = events_message(np.zeros(3, EVENT_DTYPE), 346, 260)
    with pytest.raises(SpikestreamError, match="346x260 sensor do not fit the network input 10x10"):
        asyncio.run(stdp.process(msg))


def test_restore_refuses_a_checkpoint_of_another_network(tmp_path):
    stdp, _ = make_nodes()
    other = StdpNode("o", StdpConfig(input=(2, 10, 10), layers=LAYERS[:1], seed=3), NodeContext("o", "g"))
    from pipeline.errors import CheckpointError

    with pytest.raises(CheckpointError):
        stdp.restore(other.snapshot())
    assert SPIKES == "spikes"


def test_evaluator_reports_each_phases_decisions_and_accuracies():
    from nodes.evaluation.node import EvaluationConfig, EvaluationNode
    from pipeline.events import prediction_dtype

    ev = EvaluationNode("ev", EvaluationConfig(classes=3, log_every=0), NodeContext("ev", "g"))

    def decisions(labels, truths, train):
        rec = np.zeros(len(labels), prediction_dtype(3))
        rec["label"], rec["truth"], rec["decision"], rec["train"] = labels, truths, 1, train
        return Message("predictions", rec)

    async def go():
        await ev.process(decisions([0, 1, 2, 0], [0, 1, 1, 1], 1))  # phase 1: 2 of 4 right
        ev.control(control_message("unfreeze", scope="classifier"))
        await ev.process(decisions([1, 1], [1, 1], 1))  # phase 2: 2 of 2
        ev.control(control_message("freeze", scope="features"))  # another scope: no new phase
        ev.control(control_message("freeze", scope="classifier"))
        await ev.process(decisions([2, 1], [0, 1], 0))  # phase 3: validation, 1 of 2
        ev.control(control_message("freeze", scope="classifier"))
        await ev.process(decisions([2, 0, 1, 2], [0, 0, 1, 2], 0))  # phase 4: test, 3 of 4

    asyncio.run(go())
    r = ev.results()
    assert r["phases_evaluated"] == [
        {"train": 4, "test": 0, "train_accuracy": 0.5, "test_accuracy": None},
        {"train": 2, "test": 0, "train_accuracy": 1.0, "test_accuracy": None},
        {"train": 0, "test": 2, "train_accuracy": None, "test_accuracy": 0.5},
        {"train": 0, "test": 4, "train_accuracy": None, "test_accuracy": 0.75},
    ]
    assert r["train_accuracy"] == 4 / 6
    assert r["test_accuracy"] == 4 / 6  # both evaluation phases pooled
    assert r["summary"] == [
        "phase 3: 2 evaluation decisions, accuracy 50.00 %",
        "phase 4: 4 evaluation decisions, accuracy 75.00 %",
    ]


def split_graph(ipc_dir: Path, transport: str) -> dict:
    """Font digits into one network whose layers are split over two stdp nodes (``DIGIT_LAYERS``: conv and
    pool in the first, the rest in the second)."""
    nodes = {
        "digits": font_digits(150, 50, seed=3, batch=2000),
        "encoder": encoder(34),
        "stdp": stdp((2, 34, 34), DIGIT_LAYERS[:2], seed=2),
        "stdp2": stdp((4, 15, 15), DIGIT_LAYERS[2:], seed=5),
        "classifier": {"type": "classifier", "readout": "assignment", "classes": 10, "inputs": 40},
        "evaluate": {"type": "evaluate", "classes": 10, "log_every": 0},
    }
    links = ["digits -> encoder", "encoder -> stdp", "stdp -> stdp2", "stdp2 -> classifier", "classifier -> evaluate"]
    return graph(f"split-{transport}", links, nodes, transport=transport, ipc_dir=str(ipc_dir), log_every_s=0)


@pytest.mark.timeout(180)
def test_a_network_split_over_two_processes_learns_as_in_one(tmp_path):
    # The layers of one network in two stdp nodes (two processes over ipc, to use two cores): the second
    # takes every spike of the first, phases reach both at the same point of the stream, and the result
    # is exactly that of the same graph in one process.
    from pipeline.config import load_graph
    from pipeline.runner import run_graph

    results = {}
    for transport in ("inproc", "ipc"):
        path = write_graph(tmp_path / f"{transport}.toml", split_graph(tmp_path, transport))
        results[transport] = run_graph(load_graph(path))
    one, two = results["inproc"], results["ipc"]
    assert two["errors"] == {}
    first, second = (two["nodes"][n]["results"]["stdp_layers"] for n in ("stdp", "stdp2"))
    assert first[-1]["inference_spikes"] > 0
    assert second[0]["inputs"] == first[-1]["inference_spikes"]
    assert second[0]["learning_spikes"] > 0
    assert second[-1]["learning_spikes"] > 0
    assert two["test_accuracy"] == one["test_accuracy"]
    assert two["confusion"] == one["confusion"]
    assert two["train_accuracy"] == one["train_accuracy"]
    for n in ("stdp", "stdp2"):
        assert two["nodes"][n]["results"] == one["nodes"][n]["results"]


def test_events_into_a_node_that_continues_another_are_a_clear_error():
    node = StdpNode("stdp2", StdpConfig(input=(4, 4, 4), layers=LAYERS[2:], seed=1), NodeContext("stdp2", "g"))
    with pytest.raises(SpikestreamError, match="nodes.stdp2 has 4 input channels and takes spikes"):
        asyncio.run(node.process(events_message(np.zeros(3, EVENT_DTYPE), 4, 4)))


def test_linked_nodes_that_cannot_fit_are_refused_before_anything_starts():
    """Sizes and class counts along the links are checked up front, one clear line each, instead of a
    failure on every message (or, for the evaluator, at the end of the run)."""
    from pipeline.config import parse_graph
    from pipeline.errors import ConfigError
    from pipeline.validation import validate_graph

    def graph(**changes):
        nodes = {
            "digits": {"type": "saccades", "digits": "font"},
            "encoder": {"type": "encoder", "output": [2, 16, 16]},
            "stdp": {
                "type": "stdp",
                "input": [2, 16, 16],
                "layers": [
                    {"type": "conv", "maps": 4, "kernel": 5, "th_learn": 8.0, "th_inf": 8.0},
                    {"type": "pool", "size": 2},
                    {"type": "fc", "neurons": 30, "th_learn": 30.0, "th_inf": 30.0},
                ],
            },
            "classifier": {"type": "classifier", "inputs": 30},
            "evaluate": {"type": "evaluate"},
        }
        for key, value in changes.items():
            node, param = key.split("__")
            nodes[node][param] = value
        links = ["digits -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate"]
        return parse_graph({"nodes": nodes, "links": links}, "g.toml")

    validate_graph(graph())  # fits
    cases = {
        "encoder__output": ([2, 20, 20], "nodes.stdp does not fit what nodes.encoder sends: events of a 20x20 sensor"),
        "classifier__inputs": (40, "spikes from 30 top-layer neurons, but inputs = 40"),
        "classifier__classes": (5, "labels of 10 classes, but classes = 5"),
        "evaluate__classes": (7, "nodes.evaluate does not fit what nodes.classifier sends: decisions over 10 classes"),
    }
    for key, (value, words) in cases.items():
        with pytest.raises(ConfigError, match=re.escape(words)):
            validate_graph(graph(**{key: value}))
    with pytest.raises(ConfigError, match=re.escape("g.toml [nodes.stdp] layers[2]: missing required key(s) th_inf")):
        validate_graph(
            graph(
                stdp__layers=[
                    {"type": "pool", "size": 2},
                    {"type": "pool"},
                    {"type": "fc", "neurons": 3, "th_learn": 1.0},
                ]
            )
        )


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent.parent / "configs").glob("*.toml")), ids=lambda p: p.name
)
def test_every_shipped_config_builds_typed_layers(path):
    """The layer tables of every config come out as the typed layer of their ``type``, by the one loader."""
    from nodes.stdp.node import StdpNode
    from pipeline.config import build_params, load_graph

    graph = load_graph(path)
    for name, spec in graph.nodes.items():
        if spec.type != "stdp":
            continue
        config = build_params(StdpNode.Config, spec.params, f"{path} [nodes.{name}]")
        kinds = {
            ("conv", "thiele"): ConvParams,
            ("pool", "thiele"): PoolParams,
            ("fc", "thiele"): FcParams,
            ("conv", "trace"): TraceConvParams,
            ("fc", "trace"): TraceFcParams,
        }
        expected = [kinds[t["type"], t.get("rule", "thiele")] for t in spec.params["layers"]]
        assert [type(p) for p in config.layers] == expected
        for layer, table in zip(config.layers, spec.params["layers"], strict=True):
            assert all(getattr(layer, key) == value for key, value in table.items())


def test_a_wrong_or_missing_layer_key_is_one_line_naming_it(tmp_path):
    from pipeline.config import load_graph
    from pipeline.errors import ConfigError
    from pipeline.runner import validate_graph

    config = Path(__file__).parent.parent / "configs" / "nmnist.toml"
    layers = "[{type='conv', maps=4, th_learn=8.0, th_inf=8.0}, {type='pool', sise=2}]"
    cases = {
        layers: "nmnist.toml [nodes.stdp] layers[1]: unknown key 'sise' (known: type, size)",
        "[{type='conv', th_learn=8.0, th_inf=8.0}]": "nmnist.toml [nodes.stdp] layers[0]: missing required key(s) maps",
        "[{maps=4}]": "nmnist.toml [nodes.stdp] layers[0]: missing required key(s) type (one of 'conv', 'pool', 'fc')",
        "[{type='pol'}]": "nmnist.toml [nodes.stdp] layers[0] type must be one of 'conv', 'pool', 'fc', got 'pol'",
        "[{type='fc', neurons='9', th_learn=1.0, th_inf=1.0}]": "layers[0] neurons must be an integer, got '9'",
        "[{type='conv', maps=4, th_learn=0.0, th_inf=8.0}]": "layers[0]: th_learn must be a finite number > 0",
    }
    for value, words in cases.items():
        with pytest.raises(ConfigError, match=re.escape(words)) as info:
            validate_graph(load_graph(config, [f"nodes.stdp.layers={value}"]))
        assert "\n" not in str(info.value)


def test_the_nodes_report_the_maps_in_use_and_the_decisions_per_class():
    """What a live run's summary says was learned and seen: maps that have learned, decisions per class."""
    stdp, clf = make_nodes()
    fresh = stdp.results()
    assert [(c.get("maps"), c.get("maps_learned")) for c in fresh["stdp_layers"]] == [(4, 0), (None, None), (12, 0)]
    assert clf.results()["summary"][0].startswith("decisions: none: a decision is made per labelled segment")
    events, labels = labelled_stream(seed=1)
    preds = np.concatenate(run(stdp, clf, messages(events, labels, 500)))
    layers = stdp.results()["stdp_layers"]
    assert 0 < layers[0]["maps_learned"] <= 4
    assert 0 < layers[2]["maps_learned"] <= 12
    assert stdp.results()["summary"] == [
        f"feature maps in use (learned): conv {layers[0]['maps_learned']}/4, fc {layers[2]['maps_learned']}/12"
    ]
    decided = preds[preds["decision"] == 1]["label"]
    r = clf.results()
    expected = {str(k): int(n) for k, n in enumerate(np.bincount(decided[decided >= 0], minlength=3)) if n}
    assert r["decisions_per_class"] == expected
    assert sum(r["decisions_per_class"].values()) + r["decisions_none"] == len(decided) == 24
    assert r["summary"][0].startswith("decisions per class: ")
    assert r["summary"][0].endswith("(24 in all)")
