"""Sinks without a broker: actuator debounce, JSON-lines files, the console, ZeroMQ PUB, command parsing."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.mqtt.broker import BrokerParams
from nodes.mqtt.commands import CommandError, answer_command, parse_command
from nodes.mqtt.link import BrokerLink
from nodes.mqtt.rules import ActuatorRule, RuleState, debounce
from nodes.mqtt.sink import MqttParams
from nodes.sinks.console import ConsoleParams, ConsoleSink
from nodes.sinks.jsonl import JsonLinesParams, JsonLinesSink
from nodes.sinks.predictions import prediction_dicts
from nodes.sinks.zmqpub import ZmqPubParams, ZmqPubSink
from nodes.sources.predictions import make_predictions
from pipeline.config import build_params, parse_graph
from pipeline.errors import ConfigError
from pipeline.message import control_message, predictions_message
from pipeline.node import NodeContext
from pipeline.runner import run_graph
from pipeline.wire import decode

MS = 1000


def ctx(name: str) -> NodeContext:
    return NodeContext(name=name, graph="test")


# -- actuator debounce ---------------------------------------------------------------------------------------
def fire_times(rule: ActuatorRule, recs: np.ndarray, cuts: list[int] | None = None) -> list[int]:
    """Run the rule over ``recs`` split at ``cuts``; return the stream times (ms) of the firings."""
    state = RuleState()
    times: list[int] = []
    bounds = [0, *(cuts or []), recs.shape[0]]
    for a, b in itertools.pairwise(bounds):
        part = recs[a:b]
        times += [int(part["t"][i]) // MS for i in debounce(rule, state, part)]
    return times


def stream(pairs: list[tuple[int, int]], score: float | list[float] = 0.9) -> np.ndarray:
    return make_predictions([lab for _, lab in pairs], [t * MS for t, _ in pairs], classes=5, score=score)


def test_debounce_by_hand() -> None:
    rule = ActuatorRule(label=3, topic="x", min_score=0.5, min_dwell_ms=200, cooldown_ms=1000)
    # dwell never reached: 150 ms of label 3, then another label
    assert fire_times(rule, stream([(0, 3), (100, 3), (150, 3), (160, 1), (300, 3)])) == []
    # reached: fires exactly once, at the first record 200 ms into the run, not again while it lasts
    assert fire_times(rule, stream([(0, 3), (100, 3), (199, 3), (200, 3), (250, 3), (5000, 3)])) == [200]
    # a low score breaks the run like another label does
    s = stream([(0, 3), (100, 3), (150, 3), (250, 3), (400, 3), (450, 3)], score=[0.9, 0.9, 0.1, 0.9, 0.9, 0.9])
    assert fire_times(rule, s) == [450]  # the run restarts at 250 ms
    # cooldown: second run reaches its dwell at 900 ms (< 1000 after 200): suppressed; a third at 1500 fires
    pairs = [(0, 3), (200, 3), (300, 2), (700, 3), (900, 3), (1000, 3), (1100, 0), (1300, 3), (1500, 3)]
    assert fire_times(rule, stream(pairs)) == [200, 1500]
    # the suppressed run may still fire once the cooldown is over, if it lasts
    assert fire_times(rule, stream([(0, 3), (200, 3), (300, 2), (700, 3), (900, 3), (1250, 3)])) == [200, 1250]
    # no dwell: fires on the first qualifying record; label -1 and a missing class never fire
    assert fire_times(ActuatorRule(label=3, topic="x"), stream([(0, -1), (5, 3)])) == [5]
    assert fire_times(ActuatorRule(label=7, topic="x"), stream([(0, 3)])) == []


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(-1, 2), min_size=1, max_size=60),
    steps=st.lists(st.integers(0, 120), min_size=60, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_debounce_does_not_depend_on_batching(labels: list[int], steps: list[int], cuts: list[int]) -> None:
    n = len(labels)
    t = np.cumsum(steps[:n])
    recs = make_predictions(labels, t * MS, classes=3)
    rule = ActuatorRule(label=1, topic="x", min_dwell_ms=100, cooldown_ms=300)
    whole = fire_times(rule, recs)
    assert fire_times(rule, recs, sorted(c for c in cuts if c <= n)) == whole
    # and between two firings there are at least cooldown ms
    assert all(b - a >= 300 for a, b in itertools.pairwise(whole))


def test_rules_come_from_toml_and_bad_ones_are_refused() -> None:
    doc = tomllib.loads(
        """
        host = "broker.local"
        [[rules]]
        label = 3
        topic = "lights/on"
        min_score = 0.5
        min_dwell_ms = 200
        cooldown_ms = 2000
        """
    )
    p = build_params(MqttParams, doc, "cfg [nodes.mqtt]")
    assert p.rules == (ActuatorRule(label=3, topic="lights/on", min_score=0.5, min_dwell_ms=200, cooldown_ms=2000),)
    with pytest.raises(ConfigError, match="unknown key 'dwell'"):
        build_params(MqttParams, {"rules": [{"label": 1, "topic": "a", "dwell": 3}]}, "cfg")
    with pytest.raises(ConfigError, match="wildcards"):
        build_params(MqttParams, {"rules": [{"label": 1, "topic": "a/#"}]}, "cfg")
    with pytest.raises(ConfigError, match="qos must be 0, 1 or 2"):
        build_params(MqttParams, {"qos": 3}, "cfg")
    with pytest.raises(ConfigError, match="needs a username"):
        build_params(MqttParams, {"password": "x"}, "cfg")


# -- JSON records --------------------------------------------------------------------------------------------
def test_prediction_dicts_carry_every_field() -> None:
    recs = make_predictions([2, -1], [7, 9], classes=3, score=0.1, decision=[1, 0], truth=[1, -1], train=[1, 0])
    d = prediction_dicts(recs, 5)
    assert d == [
        {"seq": 5, "t": 7, "label": 2, "truth": 1, "decision": True, "train": True, "scores": [0.0, 0.0, 0.1]},
        {"seq": 6, "t": 9, "label": -1, "truth": -1, "decision": False, "train": False, "scores": [0.0, 0.0, 0.0]},
    ]


# -- JSON lines ----------------------------------------------------------------------------------------------
def test_jsonl_appends_valid_lines_and_flushes_every_batch(tmp_path: Path) -> None:
    path = tmp_path / "out" / "pred.jsonl"
    path.parent.mkdir()
    path.write_text('{"old": 1}\n{"cut sho')  # a previous run that died mid-line

    async def one_run(first_t: int) -> list[str]:
        sink = JsonLinesSink("jsonl", JsonLinesParams(path=str(path), records="all"), ctx("jsonl"))
        await sink.start()
        seen = []
        for k in range(3):
            recs = make_predictions([1, 2], [first_t + 2 * k, first_t + 2 * k + 1], classes=3, decision=[0, 1])
            await sink.process(predictions_message(recs))
            seen.append(path.read_text())  # readable at once, before the sink stops (tail -f)
        await sink.process(control_message("freeze"))  # not a prediction: ignored, counted
        await sink.stop()
        assert sink.results()["jsonl_written"] == 6
        assert sink.results()["jsonl_ignored"] == {"control": 1}
        return seen

    seen1 = asyncio.run(one_run(0))
    assert seen1[0].count("\n") == 4
    assert seen1[2].count("\n") == 8
    asyncio.run(one_run(100))
    lines = path.read_text().splitlines()
    assert lines[:2] == ['{"old": 1}', '{"cut sho']
    docs = [json.loads(line) for line in lines[2:]]  # every later line is valid JSON on its own
    assert [d["t"] for d in docs] == [0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105]
    assert [d["seq"] for d in docs] == list(range(6)) * 2
    assert [d["decision"] for d in docs[:2]] == [False, True]


def test_jsonl_in_a_graph_writes_only_decisions(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    graph = parse_graph(
        {
            "name": "jsonl",
            "log_every_s": 0,
            "links": ["replay -> file"],
            "nodes": {
                "replay": {"type": "nodes.sources.predictions:PredictionReplay", "count": 50, "decision_every": 5},
                "file": {"type": "nodes.sinks.jsonl:JsonLinesSink", "path": str(out), "records": "decisions"},
            },
        }
    )
    results = run_graph(graph)
    assert results["errors"] == {}
    assert results["jsonl_written"] == 10
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["t"] for d in docs] == [(5 * k + 4) * 1000 for k in range(10)]
    assert all(d["decision"] and d["truth"] == d["label"] for d in docs)


# -- console -------------------------------------------------------------------------------------------------
def test_console_lines_and_running_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ConsoleSink("console", ConsoleParams(summary_every_s=0, class_names=("zero", "one")), ctx("console"))
    running = make_predictions([1] * 500, np.arange(500), classes=2)  # running predictions: never one per line
    decisions = make_predictions(
        [1, 0, 1, -1], [1_500_000, 2_000_000, 2_500_000, 3_000_000], classes=2, score=[4.25, 1.0, 2.0, 0.0],
        decision=1, truth=[1, 1, 1, 0], train=[0, 0, 1, 0],
    )  # fmt: skip

    async def main() -> None:
        await sink.process(predictions_message(running))
        await sink.process(predictions_message(decisions))
        await sink.flush()

    asyncio.run(main())
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "t=1.500000s decision 1 (one) score 4.25 truth 1 (one) ok [test]",
        "t=2.000000s decision 0 (zero) score 1 truth 1 (one) WRONG [test]",
        "t=2.500000s decision 1 (one) score 2 truth 1 (one) ok [train]",
        "t=3.000000s decision none score 0 truth 0 (zero) WRONG [test]",
        "decisions 4 (test 1/3 = 33.3%, train 1/1 = 100.0%), running predictions 500",
    ]
    assert sink.results()["console_test_accuracy"] == pytest.approx(1 / 3)


def test_console_periodic_summary(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ConsoleSink("console", ConsoleParams(summary_every_s=0.05, decisions=False), ctx("console"))

    async def main() -> None:
        for k in range(6):
            await sink.process(predictions_message(make_predictions([0], [k], classes=2, decision=1, truth=0)))
            await asyncio.sleep(0.03)

    asyncio.run(main())
    lines = capsys.readouterr().out.splitlines()
    assert 1 <= len(lines) <= 4  # a summary every 50 ms, nothing per decision
    assert all(line.startswith("decisions ") and "test " in line and "= 100.0%" in line for line in lines)


# -- ZeroMQ PUB ----------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("fmt", ["json", "wire"])
def test_zmq_pub_delivers_to_a_subscriber(fmt: str, zmq_socket: Callable[[int], zmq.Socket[bytes]]) -> None:
    sink = ZmqPubSink("pub", ZmqPubParams(bind="tcp://127.0.0.1:*", format=fmt), ctx("pub"))
    sub = zmq_socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    probe = make_predictions([0], [0], classes=3)
    data = make_predictions([2, 1, 0, 2], [10, 20, 30, 40], classes=3, score=0.5, decision=[0, 1, 0, 1])

    async def main() -> list[list[bytes]]:
        await sink.start()
        sub.connect(sink.endpoint)
        # handshake instead of a sleep: publish probes until the subscription has reached the PUB socket
        deadline = time.monotonic() + 10
        while not sub.poll(20):
            assert time.monotonic() < deadline, "subscriber never connected"
            await sink.process(predictions_message(probe))
        while sub.poll(100):
            sub.recv_multipart()
        await sink.process(predictions_message(data))
        got = [sub.recv_multipart() for _ in range(4 if fmt == "json" else 1)]
        await sink.stop()
        return got

    got = asyncio.run(main())
    if fmt == "json":
        assert all(frames[0] == b"prediction" for frames in got)
        docs = [json.loads(frames[1]) for frames in got]
        expected = [(10, 2, False), (20, 1, True), (30, 0, False), (40, 2, True)]
        assert [(d["t"], d["label"], d["decision"]) for d in docs] == expected
        assert np.diff([d["seq"] for d in docs]).tolist() == [1, 1, 1]
    else:
        msg = decode(got[0])
        assert msg.kind == "predictions"
        assert msg.data is not None
        assert msg.data.tobytes() == data.tobytes()


# -- teach commands ------------------------------------------------------------------------------------------
def test_parse_command_validates() -> None:
    msg, reply = parse_command(b'{"cmd": "label", "label": 4, "train": false, "id": "a"}', classes=5, t_us=123)
    assert msg.data is not None
    assert msg.data.tolist() == [(123, 4, 0)]
    assert reply == {"cmd": "label", "label": 4, "train": False, "t": 123, "id": "a"}
    bad: list[tuple[Any, str]] = [
        (b"\xff", "not JSON"),
        ('{"cmd": "label", "label": 5}', "out of range -1..4"),
        ('{"cmd": "label", "label": -2}', "out of range"),
        ('{"cmd": "label"}', "needs a"),
        ('{"cmd": "label", "label": true}', "must be an integer"),
        ('{"cmd": "freeze", "label": 1}', "unknown key"),
        ('{"cmd": "freeze", "scope": 3}', "scope must be"),
        ('{"label": 1}', "unknown cmd None"),
        ('"freeze"', "JSON object"),
    ]
    for payload, why in bad:
        with pytest.raises(CommandError, match=why):
            parse_command(payload, classes=5)


def test_answer_command_wraps_the_reply_and_refuses_without_a_message() -> None:
    msg, reply = answer_command('{"cmd": "freeze", "scope": "classifier", "id": 1}', classes=3)
    assert msg is not None
    assert msg.command == "freeze"
    assert msg.body == {"scope": "classifier"}
    assert reply == {"ok": True, "cmd": "freeze", "scope": "classifier", "id": 1}
    msg, reply = answer_command('{"cmd": "label", "label": 3}', classes=3)
    assert msg is None
    assert reply == {"ok": False, "error": "label 3 out of range -1..2"}


# -- the broker link (no broker needed: it only counts, explains and waits) ---------------------------------
def test_broker_link_tells_a_lost_connection_from_a_failed_one_and_backs_off() -> None:
    params = build_params(BrokerParams, {"port": 1, "reconnect_min_s": 0.01, "reconnect_max_s": 0.03}, "cfg")
    link = BrokerLink("n", params, logging.getLogger("test"))
    assert link.identifier.startswith("spikestream-n-")
    link.down(aiomqtt.MqttError("[Errno 111] Connection refused"))
    assert (link.connect_failures, link.disconnects) == (1, 0)
    assert link.last_error == "MQTT broker localhost:1 unreachable: [Errno 111] Connection refused"

    async def waits() -> list[float]:
        took = []
        for _ in range(3):
            t0 = time.perf_counter()
            await link.wait_before_retry()
            took.append(time.perf_counter() - t0)
        return took

    took = asyncio.run(waits())  # 0.01, 0.02, then capped at 0.03
    assert took[0] >= 0.01
    assert took[1] >= 0.02
    assert took[2] >= 0.03
    assert link.retry_in_s == 0.03
    link.up()
    assert (link.connects, link.reconnects, link.last_error, link.retry_in_s) == (1, 0, None, 0.01)
    link.down(aiomqtt.MqttError("Disconnected during message iteration"))
    assert (link.connect_failures, link.disconnects, link.last_error) == (1, 1, None)
    link.up()
    assert link.reconnects == 1
    link.down(aiomqtt.MqttError("Disconnected"), closing=True)  # an error while closing is not a lost link
    assert (link.connect_failures, link.disconnects) == (2, 1)
