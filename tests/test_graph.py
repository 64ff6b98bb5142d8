"""Graphs end to end over real ZeroMQ sockets: in one process, across processes (ipc, tcp), gaps,
malformed messages, stopping on a signal, and the CLI's results file."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.asyncio
from graphs import chain, chain_file, free_port, graph, write_graph

from pipeline.config import load_graph
from pipeline.events import EVENT_DTYPE
from pipeline.message import control_message, events_message
from pipeline.node import Counters
from pipeline.runner import run_graph
from pipeline.summary import summarize
from pipeline.transport import WARN_FIRST, Inlet, Outlet, jump_limit
from pipeline.wire import encode


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", ["inproc", "ipc", "tcp"])
def test_million_events_arrive_in_order(tmp_path, transport):
    results = run_graph(load_graph(chain_file(tmp_path, transport)))
    assert results["errors"] == {}
    assert results["events_in"] == 1_000_000
    assert results["sink_events"] == 1_000_000
    assert results["sink_checksum"] == results["source_checksum"]
    assert results["sink_out_of_order"] == 0
    for name in ("relay", "sink"):
        c = results["nodes"][name]["counters"]
        assert c["events_in"] == 1_000_000
        assert c["gaps"] == 0
        assert c["malformed"] == 0
        assert c["messages_in"] == -(-1_000_000 // 7_919) + 1  # data messages + end-of-stream
        assert c["latency"]["p50_ms"] >= 0


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("events", "batch", "delay_ms"),
    [
        # 130 messages of 10k events: 64 wait in the source's socket, 64 in the relay's, one or two in the
        # kernel, while the relay needs 100 ms per message: more than 6 s of messages still sit in the
        # source's socket when it closes. With the former 5 s linger the tail was dropped.
        (1_300_000, 10_000, 100),
        # 400 messages of 100 events: most of the stream fits in the kernel's socket buffer, which libzmq
        # counts as sent, so the source had "delivered" everything at once and closed; the relay, at its
        # high-water mark, then dropped what was still in that buffer (libzmq issue 4660): the last 12-23
        # messages were lost. Now a node closes only once each downstream node has its end-of-stream.
        (40_000, 100, 5),
    ],
)
def test_slow_consumer_gets_everything_after_the_source_has_finished(tmp_path, events, batch, delay_ms):
    # The source queues its whole stream at once and ends long before the relay has taken it. Every
    # message, end-of-stream included, must still arrive, and the graph must end.
    path = chain_file(tmp_path, "ipc", events=events, batch=batch, tag="slow", delay_ms=delay_ms)
    results = run_graph(load_graph(path))
    messages = events // batch
    assert results["errors"] == {}
    assert results["sink_events"] == events
    assert results["sink_checksum"] == results["source_checksum"]
    assert results["nodes"]["relay"]["counters"]["messages_in"] == messages + 1
    assert results["wall_s"] >= messages * delay_ms / 1000


STUCK_PEER = """
import asyncio, logging, sys, time
import zmq, zmq.asyncio
from pipeline.lifecycle import install_stop_handlers, terminate

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
address = sys.argv[1]
reader_ctx = zmq.Context()  # a peer that is alive but never reads: its queue fills up and stays full
pull = reader_ctx.socket(zmq.PULL)
pull.setsockopt(zmq.RCVHWM, 2)
pull.bind(address)
ctx = zmq.asyncio.Context()

async def main():
    install_stop_handlers(asyncio.get_running_loop(), lambda: None)  # as every node process does
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 2)
    push.connect(address)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            await push.send(b"x" * 1_000_000, zmq.NOBLOCK)
        except zmq.Again:
            await asyncio.sleep(0.02)
    push.close(linger=-1)  # a normal end: wait for delivery
    print("closing", flush=True)
    terminate(ctx, "stuck")
    print("terminated", flush=True)

asyncio.run(main())
"""


def test_a_signal_ends_the_wait_for_a_peer_that_never_reads_and_says_what_is_lost(tmp_path):
    # A finished node waits for its queued messages to be delivered; with a downstream peer that is
    # alive but never reads, that wait never ends by itself. Ctrl-C / SIGTERM ends it, and the messages
    # still queued are then lost: that must be said (it used to happen silently).
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_PEER, f"ipc://{tmp_path}/stuck.sock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "closing"
        time.sleep(2.5)  # well into the wait (its "waiting for downstream nodes" line comes at 2 s)
        assert proc.poll() is None, "terminate returned although the peer never read"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "terminated" in out
    assert "waiting for downstream nodes to take the last queued messages" in err
    assert "SIGINT while waiting for downstream nodes" in err
    assert "those messages are dropped" in err


def test_the_stop_grace_period_is_read_when_a_run_starts_not_at_import(monkeypatch):
    """SPIKESTREAM_STOP_GRACE_S set after the runtime was imported still counts: a node asked to stop
    waits that long (not the default 10 s) for an upstream node that never ends its stream."""
    from pipeline.config import parse_graph
    from pipeline.endpoints import resolve_endpoints
    from pipeline.errors import ConfigError
    from pipeline.lifecycle import stop_grace_s
    from pipeline.node_runner import NodeRunner
    from pipeline.validation import validate_graph

    monkeypatch.setenv("SPIKESTREAM_STOP_GRACE_S", "0.2")
    graph = parse_graph(
        {"nodes": {"src": {"type": "synthetic"}, "sink": {"type": "checksum"}}, "links": ["src -> sink"]}, "g"
    )
    nodes = validate_graph(graph)

    async def main():
        ctx = zmq.asyncio.Context()
        try:
            endpoints = resolve_endpoints(graph, None, pick_ports=True)
            async with NodeRunner(graph, nodes["sink"], endpoints, ctx) as runner:
                runner.stop_requested.set()  # the source never runs: no end-of-stream will come
                t0 = time.perf_counter()
                report = await runner.run()
                return runner.grace_s, time.perf_counter() - t0, report
        finally:
            ctx.term()

    grace, took, report = asyncio.run(main())
    assert grace == 0.2
    assert took < 5.0, took
    assert report["interrupted"]
    assert report["error"] is None
    monkeypatch.setenv("SPIKESTREAM_STOP_GRACE_S", "soon")
    with pytest.raises(ConfigError, match="SPIKESTREAM_STOP_GRACE_S must be a number of seconds, got 'soon'"):
        stop_grace_s()


def test_fan_in_and_fan_out(tmp_path):
    nodes = {
        "a": {"type": "synthetic", "events": 30000},
        "b": {"type": "synthetic", "events": 20000},
        "mid": {"type": "identity"},
        "s1": {"type": "checksum"},
        "s2": {"type": "checksum"},
    }
    fan = graph("fan", ["a -> mid", "b -> mid", "mid -> s1", "mid -> s2"], nodes, transport="inproc", log_every_s=0)
    results = run_graph(load_graph(write_graph(tmp_path / "fan.toml", fan)))
    assert results["events_in"] == 50_000
    for s in ("s1", "s2"):
        assert results["nodes"][s]["results"]["sink_events"] == 50_000
        assert results["nodes"][s]["counters"]["gaps"] == 0


def test_an_outlet_says_when_its_peer_is_connected_and_reaches_a_late_binder_quickly(tmp_path):
    """A node's links must be connected before the graph's go (a live source's first message would
    otherwise wait for the connection and fall behind). The outlet connects 0.2 s before its peer binds
    (as when the downstream process opens later): not connected then; connected soon after the bind. The
    outlet retries after 10 ms, then at growing intervals up to 100 ms: ~50 ms here; with libzmq's default
    (100 ms from the start) 109-111 ms."""

    async def main():
        ctx = zmq.asyncio.Context()
        address = f"ipc://{tmp_path}/late.sock"
        outlet = Outlet(ctx, [address], hwm=10, counters=Counters())
        inlet = None
        try:
            assert not await outlet.wait_connected(0.2)
            inlet = Inlet(ctx, name="late", bind=address, hwm=10, counters=Counters())
            t0 = time.perf_counter()
            assert await outlet.wait_connected(5.0)
            took = time.perf_counter() - t0
            await outlet.send(events_message(np.zeros(3, EVENT_DTYPE)).stamped("a", 0, 1))
            msg = await asyncio.wait_for(inlet.recv(), timeout=2.0)
            return took, msg.count
        finally:
            outlet.close(linger_ms=0)
            if inlet is not None:
                inlet.close()
            ctx.term()

    took, count = asyncio.run(main())
    assert count == 3
    assert took < 0.09, f"connected {took * 1000:.0f} ms after the bind"


def run_inlet(frames_list, bind, links=None):
    """Send raw multipart frames to an Inlet (whose lossless links carry the streams ``links``, None: any)
    and collect what it accepts."""

    async def main():
        ctx = zmq.asyncio.Context()
        counters = Counters()
        inlet = Inlet(ctx, name="probe", bind=bind, hwm=100, links=links, counters=counters)
        push = ctx.socket(zmq.PUSH)
        push.connect(bind)
        for frames in frames_list:
            await push.send_multipart(frames)
        got = []
        try:
            while True:
                msg = await asyncio.wait_for(inlet.recv(), timeout=1.0)
                got.append(msg)
                if msg.is_eos:
                    break
        finally:
            push.close(linger=0)
            inlet.close()
            ctx.term()
        return got, counters

    return asyncio.run(main())


def ev(seq: int, n: int = 3, stream: str = "cam"):
    e = np.zeros(n, EVENT_DTYPE)
    e["t"] = np.arange(n) + 10 * seq
    return encode(events_message(e).stamped(stream, seq, 1))


def test_gap_is_detected_and_counted(tmp_path):
    eos = encode(control_message("eos").stamped("cam", 4, 1))
    got, counters = run_inlet([ev(0), ev(1), ev(3), eos], f"ipc://{tmp_path}/g.in")
    assert [m.seq for m in got] == [0, 1, 3, 4]
    assert counters.gaps == 1
    assert counters.missing == 1
    assert counters.malformed == 0


def test_malformed_messages_are_counted_and_receiver_keeps_going(tmp_path):
    eos = encode(control_message("eos").stamped("cam", 2, 1))
    bad = [[b"events"], [b"events", b"{", b""], [b"events", b'{"v":9}', b""], [*ev(1)[:2], b"xx"]]
    got, counters = run_inlet([ev(0), *bad, ev(1), eos], f"ipc://{tmp_path}/m.in")
    assert [m.seq for m in got] == [0, 1, 2]
    assert counters.malformed == 4
    assert counters.gaps == 0


def test_a_duplicate_sequence_number_is_dropped_and_counted(tmp_path):
    eos = encode(control_message("eos").stamped("cam", 4, 1))
    frames = [ev(0), ev(1), ev(1), ev(2), ev(1), ev(3), eos]
    got, counters = run_inlet(frames, f"ipc://{tmp_path}/d.in", links=["cam"])
    assert [m.seq for m in got] == [0, 1, 2, 3, 4]
    assert counters.duplicates == 2
    assert (counters.gaps, counters.missing, counters.malformed) == (0, 0, 0)


def test_a_jump_far_ahead_is_dropped_as_suspicious_not_counted_as_loss(tmp_path, caplog):
    limit = jump_limit(100)
    eos = encode(control_message("eos").stamped("cam", 3, 1))
    frames = [ev(0), ev(1), ev(100_000), ev(2 + limit + 1), ev(2), eos]
    with caplog.at_level(logging.WARNING, logger="spikestream.transport"):
        got, counters = run_inlet(frames, f"ipc://{tmp_path}/j.in", links=["cam"])
    assert [m.seq for m in got] == [0, 1, 2, 3]
    assert counters.jumps == 2
    assert (counters.gaps, counters.missing) == (0, 0)
    assert "jumps 99,998 ahead of 2, more than a link can lose" in caplog.text


def test_a_hole_within_what_a_link_can_lose_is_still_a_gap(tmp_path):
    eos = encode(control_message("eos").stamped("cam", jump_limit(100) + 2, 1))
    got, counters = run_inlet([ev(0), ev(jump_limit(100) + 1), eos], f"ipc://{tmp_path}/h.in", links=["cam"])
    assert len(got) == 3
    assert (counters.gaps, counters.missing, counters.jumps) == (1, jump_limit(100), 0)


def test_a_stream_first_seen_mid_way_is_taken_from_there(tmp_path):
    """A node started after its upstream (a restarted service) first sees a late sequence number: that is
    its start, counted as a jump but not dropped."""
    eos = encode(control_message("eos").stamped("cam", 500_001, 1))
    got, counters = run_inlet([ev(500_000), eos], f"ipc://{tmp_path}/m.in", links=["cam"])
    assert [m.seq for m in got] == [500_000, 500_001]
    assert (counters.jumps, counters.missing, counters.duplicates) == (1, 0, 0)


def test_an_upstream_that_starts_its_stream_again_at_zero_is_taken(tmp_path):
    eos = encode(control_message("eos").stamped("cam", 2, 1))
    got, counters = run_inlet([ev(0), ev(1), ev(2), ev(0), ev(1), eos], f"ipc://{tmp_path}/r.in", links=["cam"])
    assert [m.seq for m in got] == [0, 1, 2, 0, 1, 2]
    assert (counters.duplicates, counters.gaps, counters.jumps) == (0, 0, 0)


def test_a_stream_that_is_not_an_upstream_link_is_refused(tmp_path):
    eos = encode(control_message("eos").stamped("cam", 2, 1))
    frames = [ev(0), ev(0, stream="intruder"), ev(1, stream="intruder"), ev(1), eos]
    got, counters = run_inlet(frames, f"ipc://{tmp_path}/u.in", links=["cam"])
    assert [(m.stream, m.seq) for m in got] == [("cam", 0), ("cam", 1), ("cam", 2)]
    assert counters.malformed == 2


def test_malformed_message_warnings_are_rate_limited_with_a_summary(tmp_path, caplog):
    eos = encode(control_message("eos").stamped("cam", 1, 1))
    bad = [[b"events", b"{", b""]] * 200
    with caplog.at_level(logging.WARNING, logger="spikestream.transport"):
        got, counters = run_inlet([ev(0), *bad, eos], f"ipc://{tmp_path}/w.in")
    assert len(got) == 2
    assert counters.malformed == 200
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == WARN_FIRST + 1, lines
    assert lines[-1].startswith(f"probe: {200 - WARN_FIRST} more malformed messages from "), lines[-1]


@pytest.mark.timeout(90)
def test_messages_from_outside_the_graph_are_dropped_and_counted(tmp_path):
    """An end-of-stream, freeze or checkpoint must come from the node's upstream: one forged by any other
    peer that reaches the socket is dropped (counted as malformed) and does not end or steer the node; so
    are its data messages."""
    import threading

    path = chain_file(tmp_path, "ipc", events=60_000, batch=1_000, tag="rogue", delay_ms=20)
    forged = [
        encode(control_message("eos").stamped("intruder", 0, 1)),
        encode(control_message("freeze").stamped("intruder", 1, 1)),
        encode(control_message("checkpoint", generation=99).stamped("intruder", 2, 1)),
        ev(3, stream="intruder"),  # data of a stream that is not a link: refused (malformed)
    ]

    def attack() -> None:
        sock_path = tmp_path / "sink.in"
        deadline = time.monotonic() + 30
        while not sock_path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the graph is streaming (60 messages x 20 ms at the relay)
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.connect(f"ipc://{sock_path}")
        for frames in forged:
            push.send_multipart(frames)
        push.close(linger=2000)
        ctx.term()

    attacker = threading.Thread(target=attack)
    attacker.start()
    results = run_graph(load_graph(path))
    attacker.join()
    assert results["sink_events"] == 60_000
    assert results["sink_checksum"] == results["source_checksum"]
    assert results["nodes"]["sink"]["counters"]["malformed"] == 4
    assert results["errors"] == {}


def test_the_summary_warns_of_duplicates_and_jumps(tmp_path):
    graph = load_graph(chain_file(tmp_path))
    counters = Counters(duplicates=2, jumps=1).as_dict() | {"errors": 0}
    results = summarize(graph, {"sink": {"counters": counters, "results": {"warnings": ["x"]}}}, 1.0)
    assert results["nodes"]["sink"]["results"]["warnings"] == [
        "x",
        "duplicate messages dropped: 2 (a peer sent a sequence number twice)",
        "messages dropped for a far sequence jump: 1 (not counted as lost)",
    ]


@pytest.mark.timeout(90)
def test_a_tapped_node_ending_does_not_end_its_subscriber(tmp_path):
    """A node waits for the end of stream of its links only: a tapped node that ends first is no reason
    to stop (its end arrives over the tap like any other message)."""
    doc = chain(tmp_path, "ipc", events=40_000, batch=1_000, tag="tap", delay_ms=20)
    doc["taps"] = ["quick -> sink"]
    doc["nodes"]["quick"] = {"type": "synthetic", "events": 10, "batch": 10}
    results = run_graph(load_graph(write_graph(tmp_path / "ipc.toml", doc)))
    assert results["errors"] == {}
    assert results["nodes"]["relay"]["counters"]["events_out"] == 40_000
    assert results["nodes"]["sink"]["counters"]["events_in"] >= 40_000  # plus what the tap let through


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    """Whatever a test started is killed afterwards, even when an assertion failed mid-way."""
    yield
    while _STARTED:
        p = _STARTED.pop()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)  # the command and any node processes it started
            p.communicate(timeout=10)


def spikestream(*args: str, **kw) -> subprocess.Popen:
    proc = _spawn(*args, **kw)
    _STARTED.append(proc)
    return proc


def _spawn(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def test_cli_run_writes_results(tmp_path):
    out = tmp_path / "r.json"
    proc = spikestream("run", str(chain_file(tmp_path, "ipc", events=50_000, tag="cli")), "--results", str(out))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    results = json.loads(out.read_text())
    for key in ("events_in", "wall_s", "events_per_s", "nodes"):
        assert key in results
    assert results["events_in"] == 50_000
    assert results["events_per_s"] > 0
    assert results["interrupted"] == []
    assert set(results["nodes"]) == {"source", "relay", "sink"}
    assert results["nodes"]["sink"]["counters"]["events_in"] == 50_000
    assert "50,000 events" in stdout


def test_cli_errors_are_one_line(tmp_path):
    doc = chain(tmp_path, "ipc", events=10, batch=1, tag="b")
    source = doc["nodes"]["source"]
    source["bacth"] = source.pop("batch")  # a misspelt key
    proc = spikestream("run", str(write_graph(tmp_path / "bad.toml", doc)))
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert stderr.strip().count("\n") == 0
    assert "unknown key 'bacth'" in stderr
    assert "bad.toml" in stderr
    assert "Traceback" not in stderr


def test_an_unwritable_results_path_is_refused_before_the_run(tmp_path):
    proc = spikestream("run", str(chain_file(tmp_path, "ipc", events=10, tag="res")), "--results", str(tmp_path))
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "is a folder" in stderr
    assert "Traceback" not in stderr
    assert "running" not in stderr  # refused before any node started


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text().lower()
    except FileNotFoundError:
        return False


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_without_orphans(tmp_path, sig):
    out = tmp_path / "r.json"
    cfg = chain_file(tmp_path, "ipc", events=10**12, batch=1000, tag=f"sig{int(sig)}")
    proc = spikestream("run", str(cfg), "--results", str(out), "--set", "nodes.source.checksum=false")
    assert proc.stderr is not None
    line = ""
    while "running" not in line:  # the ready handshake is done: every node is up
        line = proc.stderr.readline()
        assert line, "spikestream exited before the graph ran"
    kids = [k for k in children_of(proc.pid) if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
    assert len(kids) == 3  # one process per node
    time.sleep(1.0)  # let events flow
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=40)
    # Ctrl-C: 130, as shells expect (a script's `&&` stops); SIGTERM: a service manager's normal stop
    assert proc.returncode == (130 if sig == signal.SIGINT else 0), stderr
    results = json.loads(out.read_text())
    moved = results["events_in"]
    assert moved > 0
    assert results["nodes"]["sink"]["counters"]["events_in"] == moved  # flushed: nothing lost in between
    assert results["interrupted"] == ["source", "relay", "sink"]  # a script can tell it from a finished run
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(k) for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if alive(k)], "node processes outlived the runner"


def run_chain_alone(tmp_path: Path, cfg: Path) -> tuple[dict, dict]:
    """Run the chain's nodes each in its own `spikestream node` command (consumers first); return the
    source's and the sink's results."""
    outs = {n: tmp_path / f"{n}.json" for n in ("source", "relay", "sink")}
    procs = {n: spikestream("node", n, "--config", str(cfg), "--results", str(outs[n])) for n in ("sink", "relay")}
    time.sleep(0.5)
    procs["source"] = spikestream("node", "source", "--config", str(cfg), "--results", str(outs["source"]))
    for n, p in procs.items():
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, (n, err)
    return json.loads(outs["source"].read_text()), json.loads(outs["sink"].read_text())


@pytest.mark.timeout(90)
def test_nodes_run_alone_over_tcp(tmp_path):
    """`spikestream node` runs each node of one graph in its own command, as on separate hosts."""
    doc = chain(tmp_path, "tcp", events=200_000, batch=5000, tag="tcp")
    for name in ("relay", "sink"):
        doc["nodes"][name]["address"] = f"tcp://127.0.0.1:{free_port()}"
    src, sink = run_chain_alone(tmp_path, write_graph(tmp_path / "tcp.toml", doc))
    assert sink["sink_events"] == 200_000
    assert sink["sink_checksum"] == src["source_checksum"]
    assert src["events_in"] == sink["events_in"] == 200_000  # a sink run alone counts what it received


@pytest.mark.timeout(90)
def test_a_node_run_alone_ends_only_once_its_slow_downstream_has_everything(tmp_path):
    # As in the slow-consumer test above, but with each node run alone (no supervisor to confirm the
    # end of the stream): the source ends long before the relay has taken its 400 small messages, and
    # must not close its socket (losing the tail, end-of-stream included) until the relay has ended.
    cfg = chain_file(tmp_path, "ipc", events=40_000, batch=100, tag="alone", delay_ms=5)
    src, sink = run_chain_alone(tmp_path, cfg)
    assert sink["sink_events"] == 40_000
    assert sink["sink_checksum"] == src["source_checksum"]
    assert src["wall_s"] >= 400 * 0.005  # the source waited for the relay, which takes at least 2 s


def test_tcp_node_without_address_is_refused(tmp_path):
    cfg = chain_file(tmp_path, "tcp", events=10, tag="noaddr")
    proc = spikestream("node", "relay", "--config", str(cfg))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "nodes.relay needs 'address'" in err


def test_version():
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("spikestream ")
    assert os.environ.get("NOPE") is None


@pytest.mark.timeout(60)
def test_a_process_run_removes_socket_folders_that_dead_runners_left_behind(tmp_path):
    # A runner killed with SIGKILL cannot remove its socket folder in /tmp; the next run does, but only
    # folders whose runner is gone: a live runner's folder, one of another pid namespace (a container
    # sharing /tmp) and folders without a pid file stay.
    dead = subprocess.Popen(["true"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    folders = {}
    ns = os.readlink("/proc/self/ns/pid")
    marks = {"dead": f"{ns} {dead.pid}", "live": f"{ns} {os.getpid()}", "elsewhere": f"pid:[1] {dead.pid}"}
    for what in ("dead", "live", "elsewhere", "unmarked"):
        folders[what] = Path(tempfile.mkdtemp(prefix=f"spikestream-{what}-", dir=tmp))
        (folders[what] / "stdp.in").write_text("")  # stands for a leftover socket file
        if what in marks:
            (folders[what] / "pid").write_text(marks[what])
    try:
        results = run_graph(load_graph(chain_file(tmp_path, "ipc", events=1_000, batch=100, tag="sweep")))
        assert results["errors"] == {}
        assert results["sink_events"] == 1_000
        assert not folders["dead"].exists()
        assert folders["live"].exists()
        assert folders["unmarked"].exists()
        assert folders["elsewhere"].exists()
    finally:
        for f in folders.values():
            shutil.rmtree(f, ignore_errors=True)
