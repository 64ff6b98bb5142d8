"""The MQTT sink and the teach source against a real Mosquitto on 127.0.0.1 (started per test)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest
from graphs import conv, encoder, fc, graph, pool, stdp, write_graph
from mqtt_broker import Broker, running_broker

from nodes.decolle.node import DecolleNode
from nodes.mqtt.sink import MqttParams, MqttSink
from nodes.mqtt.teach import TeachParams, TeachSource
from nodes.sources.predictions import make_predictions
from pipeline.config import build_params, load_graph, parse_graph
from pipeline.events import LABEL_DTYPE
from pipeline.message import CONTROL, LABELS, Message, predictions_message
from pipeline.node import NodeContext
from pipeline.runner import run_graph

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]

USERS = {"alice": "s3cret"}
REPO = Path(__file__).parent.parent


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path) as b:
        yield b


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path, users=USERS) as b:
        yield b


def sink_for(broker: Broker, **params: Any) -> MqttSink:
    table = {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2} | params
    cfg = build_params(MqttParams, table, "test [nodes.mqtt]")
    return MqttSink("mqtt", cfg, NodeContext(name="mqtt", graph="test"))


async def wait_until(cond: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.01)


async def collect(client: aiomqtt.Client, done: Callable[[list[aiomqtt.Message]], bool], timeout_s: float = 10.0):
    got: list[aiomqtt.Message] = []

    async def read() -> None:
        async for m in client.messages:
            got.append(m)
            if done(got):
                return

    await asyncio.wait_for(read(), timeout_s)
    return got


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


# -- predictions, status, rules ------------------------------------------------------------------------------
GRAPH = {
    "name": "mqtt-test",
    "log_every_s": 0,
    "links": ["replay -> mqtt"],
    "nodes": {
        "replay": {
            "type": "nodes.sources.predictions:PredictionReplay",
            "classes": 4,
            "count": 40,
            "labels": [1, 2, 3, -1],
            "batch": 7,
            "decision_every": 4,
            "score": 0.75,
        },
        "mqtt": {"type": "nodes.mqtt.sink:MqttSink", "publish": "all", "status_period_s": 0},
    },
}


def test_graph_predictions_arrive_with_payloads_and_status(broker: Broker) -> None:
    doc = json.loads(json.dumps(GRAPH))
    doc["nodes"]["mqtt"] |= {"host": broker.host, "port": broker.port, "prefix": "lab/cam1"}

    async def main() -> tuple[dict[str, Any], list[aiomqtt.Message], list[aiomqtt.Message]]:
        async with aiomqtt.Client(broker.host, broker.port) as sub:
            await sub.subscribe("lab/cam1/prediction", qos=1)
            results = await asyncio.to_thread(run_graph, parse_graph(doc, "mqtt-test"))
            preds = await collect(sub, lambda g: len(g) >= 40)
        async with aiomqtt.Client(broker.host, broker.port) as late:  # the retained status outlives the sink
            await late.subscribe("lab/cam1/status", qos=1)
            status = await collect(late, lambda g: len(g) >= 1)
        return results, preds, status

    results, preds, status = run(main())
    assert results["errors"] == {}
    assert results["mqtt_published"] == 40
    assert results["mqtt_dropped"] == 0
    assert results["mqtt_undelivered"] == 0
    docs = [json.loads(m.payload) for m in preds]
    assert [d["seq"] for d in docs] == list(range(40))
    labels = [1, 2, 3, -1]
    for i, d in enumerate(docs):
        lab = labels[i % 4]
        assert d["t"] == i * 1000
        assert d["label"] == lab
        assert d["decision"] is (i % 4 == 3)
        assert d["truth"] == (lab if i % 4 == 3 else -1)
        assert d["scores"] == [0.75 if c == lab else 0.0 for c in range(4)]
        assert d["train"] is False
    st = json.loads(status[0].payload)
    assert status[0].retain
    assert st["state"] == "offline"
    assert st["node"] == "mqtt"
    assert st["published"] == 40


def test_actuator_fires_once_after_dwell_and_respects_cooldown(broker: Broker) -> None:
    rule = {
        "label": 3,
        "topic": "lights/on",
        "payload": "ON",
        "min_score": 0.5,
        "min_dwell_ms": 200,
        "cooldown_ms": 2000,
    }
    sink = sink_for(broker, publish="none", rules=[rule])
    ms = 1000
    # run 1: label 3 for 150 ms only (dwell not reached) -> nothing
    # run 2: 0..300 ms of label 3 -> fires once at +200 ms; a low score ends the run
    # run 3: re-reaches the dwell 600 ms after the firing -> inside the cooldown, nothing
    # run 4: from 3.1 s, reaches the dwell at 3.3 s, 2.1 s after the first firing -> fires
    t1 = [0, 50, 100, 150, 160]
    l1 = [3, 3, 3, 3, 1]
    t2 = [1000 + k * 50 for k in range(7)] + [1400]
    l2 = [3] * 8
    s2 = [0.9] * 7 + [0.1]
    t3 = [1500 + k * 50 for k in range(6)] + [1800]
    l3 = [3] * 6 + [2]
    t4 = [3100 + k * 50 for k in range(6)]
    l4 = [3] * 6
    recs = make_predictions(
        l1 + l2 + l3 + l4,
        [x * ms for x in t1 + t2 + t3 + t4],
        classes=4,
        score=[0.9] * len(t1) + s2 + [0.9] * (len(t3) + len(t4)),
    )

    async def main() -> list[aiomqtt.Message]:
        async with aiomqtt.Client(broker.host, broker.port) as sub:
            await sub.subscribe("lights/#", qos=1)
            await sink.start()
            for i in range(0, len(recs), 3):  # arbitrary batches: the debounce runs on stream time
                await sink.process(predictions_message(recs[i : i + 3]))
            await sink.flush()
            got = await collect(sub, lambda g: len(g) >= 2)
            with pytest.raises(TimeoutError):  # and nothing else arrives
                await collect(sub, lambda g: True, timeout_s=0.3)
            await sink.stop()
            return got

    got = run(main())
    assert [(str(m.topic), m.payload) for m in got] == [("lights/on", b"ON"), ("lights/on", b"ON")]
    r = sink.results()
    assert r["mqtt_actuations"] == 2
    assert r["mqtt_actuations_published"] == 2
    assert r["mqtt_rule_fires"] == {"lights/on": 2}
    assert r["mqtt_published"] == 0  # publish = "none"


# -- outages -------------------------------------------------------------------------------------------------
async def persistent_subscriber(broker: Broker, client_id: str) -> None:
    """Register a persistent QoS 1 session (survives a SIGTERM restart: persistence is on)."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=client_id, clean_session=False) as sub:
        await sub.subscribe("spikestream/prediction", qos=1)


async def drain_persistent(
    broker: Broker, client_id: str, want: Callable[[set[int]], bool], timeout_s: float = 10.0
) -> list[int]:
    seqs: list[int] = []

    def done(got: list[aiomqtt.Message]) -> bool:
        seqs.append(json.loads(got[-1].payload)["seq"])
        return want(set(seqs))

    async with aiomqtt.Client(broker.host, broker.port, identifier=client_id, clean_session=False) as sub:
        await collect(sub, done, timeout_s)
    return seqs


def test_broker_restart_delivers_everything_buffered_at_qos1(broker: Broker) -> None:
    sink = sink_for(broker, publish="all", qos=1, buffer_size=1000)

    async def main() -> list[int]:
        await persistent_subscriber(broker, "watcher")
        await sink.start()
        await wait_until(lambda: sink.connected, what="sink connected")
        t = 0
        for _ in range(5):  # 50 records before the outage
            await sink.process(predictions_message(make_predictions([1] * 10, range(t, t + 10))))
            t += 10
        await sink.flush()
        assert sink.results()["mqtt_published"] == 50
        broker.kill()
        await wait_until(lambda: not sink.connected, what="sink noticing the outage")
        for _ in range(30):  # 300 records during the outage: buffered, process() never waits
            t_call = time.perf_counter()
            await sink.process(predictions_message(make_predictions([2] * 10, range(t, t + 10))))
            assert time.perf_counter() - t_call < 0.05
            t += 10
            await asyncio.sleep(0.005)
        assert sink.pending == 300
        await asyncio.to_thread(broker.start)
        await sink.flush()
        assert sink.pending == 0
        seqs = await drain_persistent(broker, "watcher", lambda s: s >= set(range(350)))
        await sink.stop()
        return seqs

    seqs = run(main())
    assert set(seqs) == set(range(350))
    r = sink.results()
    assert r["mqtt_reconnects"] >= 1
    assert r["mqtt_dropped"] == 0
    assert r["mqtt_published"] >= 350
    assert r["mqtt_undelivered"] == 0
    assert r["mqtt_last_error"] is None


def test_overflow_during_outage_drops_oldest_and_counts(broker: Broker) -> None:
    sink = sink_for(broker, publish="all", qos=1, buffer_size=25)

    async def main() -> list[int]:
        await persistent_subscriber(broker, "watcher2")
        await sink.start()
        await wait_until(lambda: sink.connected, what="sink connected")
        broker.kill()
        await wait_until(lambda: not sink.connected, what="sink noticing the outage")
        await sink.process(predictions_message(make_predictions([0] * 100, range(100))))
        assert sink.pending == 25
        assert sink.results()["mqtt_dropped"] == 75
        await asyncio.to_thread(broker.start)
        await sink.flush()
        seqs = await drain_persistent(broker, "watcher2", lambda s: s >= set(range(75, 100)))
        with pytest.raises(TimeoutError):  # nothing older arrives
            await drain_persistent(broker, "watcher2", lambda s: False, timeout_s=0.5)
        await sink.stop()
        return seqs

    seqs = run(main())
    assert sorted(set(seqs)) == list(range(75, 100))  # the newest 25 survived
    assert sink.results()["mqtt_dropped"] == 75


# -- credentials ---------------------------------------------------------------------------------------------
def test_credentials_are_honoured(auth_broker: Broker) -> None:
    sink = sink_for(auth_broker, username="alice", password="s3cret", publish="all")

    async def main() -> list[aiomqtt.Message]:
        async with aiomqtt.Client(auth_broker.host, auth_broker.port, username="alice", password="s3cret") as sub:
            await sub.subscribe("spikestream/prediction", qos=1)
            await sink.start()
            await sink.process(predictions_message(make_predictions([5], [42])))
            await sink.flush()
            got = await collect(sub, lambda g: len(g) >= 1)
            await sink.stop()
            return got

    got = run(main())
    assert json.loads(got[0].payload)["t"] == 42
    assert sink.results()["mqtt_last_error"] is None


def test_wrong_credentials_give_a_clear_error_and_the_graph_keeps_running(auth_broker: Broker, tmp_path: Path) -> None:
    pw = tmp_path / "pw.txt"
    pw.write_text("wrong\n")
    doc = json.loads(json.dumps(GRAPH))
    doc["nodes"]["mqtt"] |= {
        "host": auth_broker.host,
        "port": auth_broker.port,
        "username": "alice",
        "password_file": str(pw),
        "flush_timeout_s": 0.5,
        "reconnect_min_s": 0.05,
    }
    t0 = time.monotonic()
    results = run_graph(parse_graph(doc, "bad-credentials"))
    assert time.monotonic() - t0 < 10
    assert results["errors"] == {}  # the pipeline itself ran to its end
    assert results["nodes"]["replay"]["counters"]["messages_out"] >= 6
    err = results["mqtt_last_error"]
    assert f"127.0.0.1:{auth_broker.port}" in err
    assert "refused user 'alice'" in err
    assert "username/password" in err
    assert results["mqtt_published"] == 0
    assert results["mqtt_undelivered"] == 40
    assert results["nodes"]["mqtt"]["results"]["mqtt_connect_failures"] >= 1


def test_tls_verified_by_ca_and_refused_without_it(tmp_path: Path) -> None:
    with running_broker(tmp_path, tls=True) as tls_broker:
        assert tls_broker.ca_file is not None
        ca = str(tls_broker.ca_file)
        good = sink_for(tls_broker, ca_file=ca, publish="all")
        untrusted = sink_for(tls_broker, tls=True, publish="all", flush_timeout_s=0.3)  # system CAs only

        async def main() -> list[aiomqtt.Message]:
            sub_tls = aiomqtt.TLSParameters(ca_certs=ca)
            async with aiomqtt.Client(tls_broker.host, tls_broker.port, tls_params=sub_tls) as sub:
                await sub.subscribe("spikestream/prediction", qos=1)
                for sink in (good, untrusted):
                    await sink.start()
                    await sink.process(predictions_message(make_predictions([2], [7])))
                    await sink.flush()
                got = await collect(sub, lambda g: len(g) >= 1)
                with pytest.raises(TimeoutError):  # the untrusted sink's prediction never gets through
                    await collect(sub, lambda g: True, timeout_s=0.3)
                for sink in (good, untrusted):
                    await sink.stop()
                return got

        got = run(main())
    assert json.loads(got[0].payload)["t"] == 7
    assert good.results()["mqtt_published"] == 1
    err = untrusted.results()["mqtt_last_error"]
    assert err.startswith(f"TLS to MQTT broker 127.0.0.1:{tls_broker.port} failed")
    assert "ca_file" in err
    assert untrusted.results()["mqtt_undelivered"] == 1


# -- teaching ------------------------------------------------------------------------------------------------
def test_teach_commands_become_messages_and_bad_ones_are_refused(broker: Broker) -> None:
    cfg = build_params(TeachParams, {"host": broker.host, "port": broker.port, "classes": 10}, "test")
    teach = TeachSource("teach", cfg, NodeContext(name="teach", graph="test"))
    commands: list[Any] = [
        {"cmd": "freeze"},
        "not json",
        {"cmd": "label", "label": 3},
        {"cmd": "label", "label": 10},
        {"cmd": "label", "label": None, "train": False},
        {"cmd": "explode"},
        {"cmd": "label", "label": "3"},
        {"cmd": "label", "label": 2, "train": "yes"},
        {"cmd": "unfreeze", "scope": "classifier", "id": 7},
        {"cmd": "label", "label": "unknown"},
        {"cmd": "snapshot"},
        [1, 2],
    ]

    async def main() -> tuple[list[Message], list[dict[str, Any]]]:
        out: list[Message] = []

        async def pump() -> None:
            async for msg in teach.produce():
                out.append(msg)

        task = asyncio.ensure_future(pump())
        await asyncio.wait_for(teach.subscribed.wait(), 10)
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe("spikestream/control/reply", qos=1)
            for c in commands:
                await client.publish("spikestream/control", c if isinstance(c, str) else json.dumps(c), qos=1)
            replies = await collect(client, lambda g: len(g) >= len(commands))
        await wait_until(lambda: len(out) >= 6, what="6 messages from the teach source")
        task.cancel()  # what the runner does on a stop request
        with pytest.raises(asyncio.CancelledError):
            await task
        return out, [json.loads(m.payload) for m in replies]

    t_before = time.time_ns() // 1000
    out, replies = run(main())
    assert [r["ok"] for r in replies] == [True, False, True, False, True, False, False, False, True, True, True, False]
    assert "not JSON" in replies[1]["error"]
    assert "out of range -1..9" in replies[3]["error"]
    assert "unknown cmd 'explode'" in replies[5]["error"]
    assert "must be an integer" in replies[6]["error"]
    assert "true or false" in replies[7]["error"]
    assert replies[8] == {"ok": True, "cmd": "unfreeze", "scope": "classifier", "id": 7}
    assert [(m.kind, m.command) for m in out] == [
        (CONTROL, "freeze"),
        (LABELS, None),
        (LABELS, None),
        (CONTROL, "unfreeze"),
        (LABELS, None),
        (CONTROL, "checkpoint"),
    ]
    assert out[3].body == {"scope": "classifier"}
    labels = [m.data for m in out if m.kind == LABELS]
    assert all(a is not None and a.dtype == LABEL_DTYPE and a.shape == (1,) for a in labels)
    assert [(int(a["label"][0]), int(a["train"][0])) for a in labels] == [(3, 1), (-1, 0), (-1, 1)]  # type: ignore[index]
    ts = [int(a["t"][0]) for a in labels]  # type: ignore[index]
    assert t_before <= ts[0] <= ts[1] <= ts[2] <= time.time_ns() // 1000  # wall-clock µs
    assert teach.results()["teach_accepted"] == 6
    assert teach.results()["teach_refused"] == 6


def test_teach_source_reconnects_after_a_broker_restart(broker: Broker) -> None:
    table = {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
    teach = TeachSource("teach", build_params(TeachParams, table, "test"), NodeContext(name="teach", graph="test"))

    async def main() -> list[Message]:
        out: list[Message] = []

        async def pump() -> None:
            async for msg in teach.produce():
                out.append(msg)

        task = asyncio.ensure_future(pump())
        await asyncio.wait_for(teach.subscribed.wait(), 10)
        broker.kill()
        await wait_until(lambda: not teach.subscribed.is_set(), what="the teach source noticing the outage")
        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(teach.subscribed.wait(), 10)
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish("spikestream/control", json.dumps({"cmd": "snapshot"}), qos=1)
        await wait_until(lambda: len(out) >= 1, what="the command after the restart")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return out

    out = run(main())
    assert [(m.kind, m.command) for m in out] == [(CONTROL, "checkpoint")]
    r = teach.results()
    assert r["teach_connects"] == 2
    assert r["teach_disconnects"] == 1
    assert r["teach_last_error"] is None


# -- a live graph taught over MQTT (the shape of configs/camera-teach.toml), one process per node -------------
def teach_graph(ipc_dir: Path, port: int) -> dict[str, Any]:
    """A camera stand-in (synthetic events stamped with the wall clock, never ending) whose classifier is
    taught by the teach source and acted on by the MQTT sink, both on the broker at ``port``."""
    layers = [conv(4, 8.0, a_minus=-0.005), pool(), fc(8, 10.0, a_minus=-0.005, wta_inf=True)]
    nodes = {
        "cam": {"type": "simulated-camera", "rate": 20000, "width": 16, "height": 16},
        "encoder": encoder(16),
        "teach": {"type": "teach", "host": "127.0.0.1", "port": port, "classes": 4, "reconnect_min_s": 0.05},
        "stdp": stdp((2, 16, 16), layers, seed=1),
        "classifier": {
            "type": "classifier",
            "readout": "supervised",
            "classes": 4,
            "inputs": 8,
            "threshold": 2.0,
            "running": True,
        },
        "actuator": {"type": "mqtt", "host": "127.0.0.1", "port": port, "publish": "all", "status_period_s": 0},
    }
    links = ["cam -> encoder", "encoder -> stdp", "stdp -> classifier", "teach -> classifier", "classifier -> actuator"]
    return graph("teach-live", links, nodes, transport="ipc", ipc_dir=str(ipc_dir), log_every_s=0)


def spawn_cli(*args: str) -> subprocess.Popen[str]:
    """The CLI in a process group of its own, so that a test can end it with every node process it started."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


class Inbox:
    """Every message a client receives, by topic, read in the background while the test goes on."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.by_topic: dict[str, list[Any]] = {}
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for m in self.client.messages:
            self.by_topic.setdefault(str(m.topic), []).append(json.loads(m.payload))

    def get(self, topic: str) -> list[Any]:
        return self.by_topic.get(topic, [])


async def command_answered(
    client: aiomqtt.Client, inbox: Inbox, proc: subprocess.Popen[str], cmd: dict[str, Any]
) -> dict[str, Any]:
    """Publish ``cmd`` until the teach source answers (it may not be subscribed yet at first)."""
    replies = lambda: inbox.get("spikestream/control/reply")  # noqa: E731
    before = len(replies())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        await client.publish("spikestream/control", json.dumps(cmd), qos=1)
        for _ in range(50):
            if len(replies()) > before:
                return dict(replies()[before])
            await asyncio.sleep(0.01)
    msg = f"no reply to {cmd}"
    raise AssertionError(msg)


async def until_true(cond: Callable[[], object], what: str, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    """Wait for ``cond`` while the graph ``proc`` runs."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(150)
def test_a_live_graph_taught_over_mqtt_learns_the_label_and_ends_cleanly(broker: Broker, tmp_path: Path) -> None:
    """Labels published on <prefix>/control reach the classifier of a running multi-process graph through the
    teach source (a second input of the classifier, aligned by wall-clock time with the camera's events):
    the segment they open is trained and decided with its label; a snapshot command checkpoints the
    classifier; SIGTERM ends every node with its state saved and the sink's last status published."""
    cfg = write_graph(tmp_path / "teach.toml", teach_graph(tmp_path, broker.port))
    state = tmp_path / "state"
    proc = spawn_cli("run", str(cfg), "--state", str(state), "--results", str(tmp_path / "r.json"), "-q")
    try:

        async def main() -> tuple[Inbox, list[dict[str, Any]]]:
            async with aiomqtt.Client(broker.host, broker.port) as client:
                await client.subscribe("spikestream/#", qos=1)
                inbox = Inbox(client)

                async def command(cmd: dict[str, Any]) -> dict[str, Any]:
                    return await command_answered(client, inbox, proc, cmd)

                def predictions() -> list[dict[str, Any]]:
                    return inbox.get("spikestream/prediction")

                async def until(cond: Callable[[], bool], what: str) -> None:
                    await until_true(cond, what, proc)

                await until(lambda: len(predictions()) > 0, "running predictions before any label")
                assert all(p["train"] is False and p["truth"] == -1 for p in predictions())
                first = await command({"cmd": "label", "label": 2})
                await until(lambda: sum(p["train"] for p in predictions()) >= 200, "predictions while taught")
                second = await command({"cmd": "label", "label": None, "train": False})
                await until(lambda: any(p["decision"] for p in predictions()), "the taught segment's decision")
                snap = await command({"cmd": "snapshot"})
                await until((state / "classifier.npz").exists, "the classifier's snapshot")
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, 60) == 0, proc.communicate()[1]
                await until_status_offline(inbox)
                inbox.task.cancel()
                return inbox, [first, second, snap]

        async def until_status_offline(inbox: Inbox) -> None:
            deadline = time.monotonic() + 10
            while not inbox.get("spikestream/status") or inbox.get("spikestream/status")[-1]["state"] != "offline":
                assert time.monotonic() < deadline, "no offline status after SIGTERM"
                await asyncio.sleep(0.02)

        inbox, (first, second, snap) = run(main())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the runner and its node processes (they hold its pipes)
        proc.communicate(timeout=10)  # (closes the pipes)

    assert first["ok"]
    assert first["label"] == 2
    assert first["train"] is True
    assert second["ok"]
    assert second["label"] == -1
    assert second["train"] is False
    assert snap["ok"]
    preds = inbox.get("spikestream/prediction")
    assert [p["seq"] for p in preds] == list(range(preds[0]["seq"], preds[0]["seq"] + len(preds)))  # none lost
    decided = next(i for i, p in enumerate(preds) if p["decision"])
    # a label applies from the first spike stamped at or after it; the end of the taught segment can come
    # late (the second label travels from another process while camera spikes keep coming), which the
    # classifier counts, but it is never early and nothing after the decision is taught
    assert all(p["t"] >= first["t"] for p in preds if p["train"])
    assert any(p["train"] for p in preds[:decided])
    assert not any(p["train"] for p in preds[decided + 1 :])
    decision = preds[decided]
    assert decision["truth"] == 2
    assert decision["train"] is True
    assert decision["t"] == second["t"]
    # taught class 2 for a few seconds: the unlabelled segment after it is predicted as 2 (the taught
    # segment's own decision is made with the weights it started from: predict first, then learn)
    after = [p for p in preds[decided + 1 :] if not p["decision"]]
    assert after
    assert after[-1]["label"] == 2, [p["label"] for p in after][-20:]
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["errors"] == {}
    accepted = [r for r in inbox.get("spikestream/control/reply") if r["ok"]]
    assert len(accepted) >= 3
    assert results["teach_accepted"] == len(accepted)
    assert results["teach_refused"] == 0
    assert results["classifier"]["updates"] > 0
    assert results["classifier"]["resets"] >= 1
    assert results["mqtt_published"] == results["mqtt_received"] > 0
    assert results["mqtt_dropped"] == 0
    for node in ("encoder", "stdp", "classifier"):
        assert (state / f"{node}.npz").exists(), node
    final = inbox.get("spikestream/status")[-1]
    assert final["node"] == "actuator"
    assert final["published"] == results["mqtt_published"]


@pytest.mark.timeout(150)
def test_the_shipped_decolle_camera_graph_taught_over_mqtt_learns_in_its_layers(broker: Broker, tmp_path: Path) -> None:
    """configs/camera-decolle.toml as shipped, a simulated camera in place of a real one: a label published on
    <prefix>/control reaches the DECOLLE layers first (they learn from it) and, passed on, the readout, which
    decides the taught segment with it."""
    doc = tomllib.loads((REPO / "configs" / "camera-decolle.toml").read_text())
    doc["nodes"]["camera"] = {"type": "simulated-camera", "rate": 20000, "width": 64, "height": 48}
    doc["nodes"]["teach"] |= {"port": broker.port, "reconnect_min_s": 0.05}
    doc["nodes"]["actuator"] |= {"port": broker.port, "status_period_s": 0}
    doc |= {"ipc_dir": str(tmp_path), "log_every_s": 0}
    cfg = write_graph(tmp_path / "camera-decolle.toml", doc)
    state = tmp_path / "state"
    proc = spawn_cli("run", str(cfg), "--state", str(state), "--results", str(tmp_path / "r.json"), "-q")
    try:

        async def main() -> tuple[Inbox, dict[str, Any]]:
            async with aiomqtt.Client(broker.host, broker.port) as client:
                await client.subscribe("spikestream/#", qos=1)
                inbox = Inbox(client)
                decisions = lambda: [p for p in inbox.get("spikestream/prediction") if p["decision"]]  # noqa: E731
                first = await command_answered(client, inbox, proc, {"cmd": "label", "label": 2})
                await asyncio.sleep(3)  # three seconds of the scene taught as class 2
                await command_answered(client, inbox, proc, {"cmd": "label", "label": None, "train": False})
                await until_true(decisions, "the taught segment's decision", proc)
                await command_answered(client, inbox, proc, {"cmd": "snapshot"})
                await until_true((state / "decolle.npz").exists, "the DECOLLE node's snapshot", proc)
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, 60) == 0, proc.communicate()[1]
                inbox.task.cancel()
                return inbox, first

        inbox, first = run(main())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)

    assert first["ok"]
    decision = next(p for p in inbox.get("spikestream/prediction") if p["decision"])
    assert decision["truth"] == 2
    assert decision["train"] is True
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["errors"] == {}
    layers = results["decolle"]
    assert layers["segments"] >= 2  # the label taught, then the unknown one after it
    assert layers["updates"][0] > 0  # the layer learnt from the label it was sent
    assert layers["inputs"][0] > 0
    # its weights moved away from where the seed put them
    spec = load_graph(cfg).nodes["decolle"]
    fresh = DecolleNode("decolle", build_params(DecolleNode.Config, spec.params, "decolle"), NodeContext("d", "g"))
    learnt = np.load(state / "decolle.npz")["net.0.w"]
    assert learnt.shape == fresh.net.weights(0).shape
    assert not np.array_equal(learnt, fresh.net.weights(0))
    assert results["classifier"]["updates"] > 0


def test_a_killed_sink_leaves_its_last_will_as_the_retained_status(broker: Broker, tmp_path: Path) -> None:
    """kill -9 of the MQTT sink's process: the broker publishes the sink's last will, so subscribers of the
    retained status learn that it is gone (without the counters a clean stop would report)."""
    nodes = {
        "upstream": {"type": "synthetic", "events": 10},
        "actuator": {"type": "mqtt", "host": "127.0.0.1", "port": broker.port, "status_period_s": 0},
    }
    will = graph("will", ["upstream -> actuator"], nodes, transport="ipc", ipc_dir=str(tmp_path))
    cfg = write_graph(tmp_path / "sink.toml", will)
    proc = spawn_cli("node", "actuator", "--config", str(cfg), "-q")  # waits for its upstream, connected
    try:

        async def retained_status() -> tuple[dict[str, Any], bool]:
            async with aiomqtt.Client(broker.host, broker.port) as c:
                await c.subscribe("spikestream/status", qos=1)
                (m,) = await collect(c, lambda g: len(g) >= 1)
                return dict(json.loads(m.payload)), m.retain  # retain: kept by the broker from before

        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                online, _ = run(asyncio.wait_for(retained_status(), 0.5))
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "the sink never published its online status"
        assert online["state"] == "online"
        assert online["node"] == "actuator"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        gone, retained = run(retained_status())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert retained
    assert gone == {"state": "offline", "node": "actuator"}
