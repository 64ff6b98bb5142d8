"""Live sources: camera discovery errors and ROI, the DV network client against a real NetworkWriter
(with a server restart), the simulated camera's pacing and dropping, and video frames → events."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from graphs import conv, encoder, fc, free_port, graph, stdp, write_graph

import devices.camera as camera_mod
from devices.camera import CameraParams, CameraSource, crop_roi
from devices.network import DvNetworkSource, NetworkParams, backoff_delay
from devices.simulated import SimulatedCamera, SimulatedParams
from devices.video import VideoParams, VideoSource
from pipeline.config import parse_graph
from pipeline.errors import ConfigError, DeviceError
from pipeline.events import EVENT_DTYPE, make_events
from pipeline.message import EVENTS, Message
from pipeline.node import Node, NodeContext, NoParams
from pipeline.runner import run_graph


def ctx(name: str = "src") -> NodeContext:
    return NodeContext(name=name, graph="test")


async def collect(src: Any, until: int, timeout_s: float = 30.0, into: list[Message] | None = None) -> list[Message]:
    """Start ``src`` and gather its messages (in ``into`` when given, kept if the source fails) until ``until``
    events arrived (or its stream ends)."""
    got: list[Message] = [] if into is None else into
    n = 0
    await src.start()
    agen = src.produce()
    try:
        async with asyncio.timeout(timeout_s):
            async for msg in agen:
                got.append(msg)
                n += msg.count
                if n >= until:
                    break
    finally:
        await agen.aclose()
        await src.stop()
    return got


def cat(msgs: list[Message]) -> np.ndarray:
    return np.concatenate([m.data for m in msgs]) if msgs else np.zeros(0, EVENT_DTYPE)


# -- camera -------------------------------------------------------------------------------------------------
def test_no_camera_gives_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(camera_mod, "discover", list)
    src = CameraSource("cam", CameraParams(), ctx())
    with pytest.raises(DeviceError) as err:
        asyncio.run(src.start())
    msg = str(err.value)
    for needle in ("no iniVation camera found", "USB", "udev", "spikestream cameras"):
        assert needle in msg
    # and the real dv-processing discovery agrees here: nothing is connected, the CLI says so and exits 1
    monkeypatch.undo()
    from devices.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["cameras"])
    assert args.func(args) == 1
    assert "no iniVation camera connected" in capsys.readouterr().err


class FakeStore:
    def __init__(self, ev: np.ndarray) -> None:
        self._a = np.zeros(ev.shape[0], dtype=[("timestamp", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "i1")])
        self._a["timestamp"], self._a["x"], self._a["y"], self._a["polarity"] = ev["t"], ev["x"], ev["y"], ev["p"]

    def numpy(self) -> np.ndarray:
        return self._a


class FakeCamera:
    """Two batches, then unplugged: isRunning() turns false."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self._batches = [FakeStore(b) for b in batches]

    def getCameraName(self) -> str:
        return "DVXplorer_FAKE0001"

    def getEventResolution(self) -> tuple[int, int]:
        return (64, 48)

    def getNextEventBatch(self) -> FakeStore | None:
        return self._batches.pop(0) if self._batches else None

    def isRunning(self) -> bool:
        return bool(self._batches)


def test_camera_roi_and_vanishing_camera(monkeypatch):
    ev = make_events([1, 2, 3, 4, 5], [0, 10, 19, 20, 63], [0, 5, 14, 5, 47], [1, 0, 1, 1, 0])
    # crop + shift on the unit level: the window x in [10, 20), y in [5, 15)
    out = crop_roi(ev, (10, 5, 10, 10))
    assert out.dtype == EVENT_DTYPE
    assert out["t"].tolist() == [2, 3]
    assert out["x"].tolist() == [0, 9]
    assert out["y"].tolist() == [0, 9]
    assert out["p"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="region of interest"):
        crop_roi(ev, (0, 0, 0, 5))
    # through the node: the sensor size becomes the window's, and a vanished camera is named
    monkeypatch.setattr(camera_mod, "discover", lambda: ["desc"])
    monkeypatch.setattr(camera_mod, "pick_camera", lambda found, wanted: found[0])
    src = CameraSource("cam", CameraParams(roi=(10, 5, 10, 10)), ctx())
    monkeypatch.setattr(src, "_open", lambda: FakeCamera([ev, ev]))
    with pytest.raises(DeviceError, match="DVXplorer_FAKE0001 stopped delivering data"):
        asyncio.run(collect(src, until=10**9))
    assert src.sensor_size == (10, 10)
    assert src.results()["camera_events"] == 4
    bad = CameraSource("cam", CameraParams(roi=(60, 0, 10, 10)), ctx())
    monkeypatch.setattr(bad, "_open", lambda: FakeCamera([ev]))
    with pytest.raises(DeviceError, match="not a non-empty window inside the 64x48 sensor"):
        asyncio.run(bad.start())


class LateCamera(FakeCamera):
    """A fresh batch, then 0.2 s of events delivered at once 0.2 s later (a graph that held the camera up)."""

    def __init__(self) -> None:
        now = time.time_ns() // 1000
        fresh = make_events(np.arange(now - 1000, now, 10), *np.zeros((3, 100), np.int64))
        backlog = make_events(np.arange(now, now + 200_000, 10), *np.ones((3, 20_000), np.int64))
        super().__init__([fresh, backlog])
        self._calls = 0

    def getNextEventBatch(self) -> FakeStore | None:
        self._calls += 1
        if self._calls == 2:
            time.sleep(0.2)
        return super().getNextEventBatch()


def test_a_camera_that_is_held_up_sheds_the_oldest_events_beyond_its_lag(monkeypatch):
    monkeypatch.setattr(camera_mod, "discover", lambda: ["desc"])
    monkeypatch.setattr(camera_mod, "pick_camera", lambda found, wanted: found[0])
    src = CameraSource("cam", CameraParams(max_lag_us=50_000), ctx())
    monkeypatch.setattr(src, "_open", LateCamera)
    msgs: list = []
    with pytest.raises(DeviceError, match="stopped delivering data"):
        asyncio.run(collect(src, until=10**9, into=msgs))
    got = cat(msgs)
    res = src.results()
    assert res["camera_events"] == 100 + 20_000
    assert res["events_emitted"] + res["events_dropped"] == res["camera_events"]
    assert res["drop_episodes"] == 1
    # the backlog's first ~150 ms are shed (oldest first; more if this machine delivers the batch late);
    # the fresh batch goes out whole
    assert 13_000 <= res["events_dropped"] < 20_000, res
    assert (got["x"] == 0).sum() == 100
    assert np.all(np.diff(got["t"]) >= 0)
    backlog = got[got["x"] == 1]
    assert backlog["t"][-1] - backlog["t"][0] <= 50_000


@pytest.mark.needs_camera
def test_real_camera_streams():
    if not camera_mod.discover():
        pytest.skip("no iniVation camera connected (spikestream cameras lists none)")
    msgs = asyncio.run(collect(CameraSource("cam", CameraParams(), ctx()), until=1000))
    ev = cat(msgs)
    assert ev.shape[0] >= 1000
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].max() < msgs[0].width
    assert ev["y"].max() < msgs[0].height


# -- DV network stream --------------------------------------------------------------------------------------
SERVER = """
import sys, time
import dv_processing as dv
rec = dv.io.MonoCameraRecording(sys.argv[1])
stores = []
while (b := rec.getNextEventBatch()) is not None:
    stores.append(b)
stream = dv.io.Stream.EventStream(0, "events", rec.getCameraName(), rec.getEventResolution())
if sys.argv[2] == "unix":
    w = dv.io.NetworkWriter(dv.Path(sys.argv[3]), stream)
else:
    w = dv.io.NetworkWriter("127.0.0.1", int(sys.argv[3]), stream)
print("ready", flush=True)
while w.getClientCount() == 0:
    time.sleep(0.005)
for s in stores:
    w.writeEvents(s)
while w.getQueuedPacketCount():
    time.sleep(0.005)
print("sent", flush=True)
time.sleep(600)
"""


def recording_events(path: Path) -> np.ndarray:
    import dv_processing as dv

    rec = dv.io.MonoCameraRecording(str(path))
    parts = []
    while (b := rec.getNextEventBatch()) is not None:
        parts.append(camera_mod.dv_events(b))
    return np.concatenate(parts)


@pytest.mark.needs_data
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_network_client_receives_and_reconnects(data_dir, tmp_path, kind):
    rec_path = data_dir / "aedat4" / "tonic_sample.aedat4"
    expected = recording_events(rec_path)
    n = expected.shape[0]
    where = str(tmp_path / "dv.sock") if kind == "unix" else str(free_port())
    servers: list[subprocess.Popen] = []

    def serve() -> None:
        if kind == "unix":
            Path(where).unlink(missing_ok=True)  # a killed server leaves its socket file behind
        p = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(rec_path), kind, where], stdout=subprocess.PIPE, text=True
        )
        servers.append(p)

    params = (
        NetworkParams(path=where, backoff_s=0.05, backoff_max_s=0.4, attempts=100)
        if kind == "unix"
        else NetworkParams(port=int(where), backoff_s=0.05, backoff_max_s=0.4, attempts=100)
    )
    src = DvNetworkSource("net", params, ctx())

    async def run() -> list[np.ndarray]:
        serve()  # the client starts before the server is up: it must retry
        await src.start()
        got: list[np.ndarray] = []
        count = 0
        agen = src.produce()
        try:
            async with asyncio.timeout(60):
                async for msg in agen:
                    assert (msg.width, msg.height) == (320, 240)
                    got.append(msg.data)
                    count += msg.count
                    if count == n:  # first stream complete: take the server down, bring a new one up
                        servers[0].kill()
                        servers[0].wait()
                        await asyncio.sleep(0.3)
                        serve()
                    if count >= 2 * n:
                        break
        finally:
            await agen.aclose()
        return got

    try:
        got = np.concatenate(asyncio.run(run()))
    finally:
        for p in servers:
            p.kill()
            p.communicate()  # (closes its stdout pipe)
    assert got.shape[0] == 2 * n
    for part in (got[:n], got[n:]):
        for f in ("t", "x", "y", "p"):
            assert np.array_equal(part[f], expected[f]), f
    r = src.results()
    assert r["network_reconnects"] == 1
    assert r["network_disconnects"] == 1
    assert r["network_failed_attempts"] >= 1
    assert r["network_events"] == 2 * n


def test_network_gives_up_with_a_clear_error():
    assert [backoff_delay(a, 0.1, 0.5) for a in (1, 2, 3, 4, 9)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    port = free_port()  # nothing listens there
    src = DvNetworkSource("net", NetworkParams(port=port, backoff_s=0.01, backoff_max_s=0.02, attempts=3), ctx())
    with pytest.raises(DeviceError, match=f"tcp://127.0.0.1:{port}: gave up after 3 attempts"):
        asyncio.run(collect(src, until=1))
    assert src.results()["network_failed_attempts"] == 3


# -- simulated camera ---------------------------------------------------------------------------------------
def write_recording(tmp_path: Path, seconds: float = 1.0, rate: float = 100_000) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(7)
    n = int(seconds * rate)
    t = 1_000_000 + np.sort(rng.integers(0, int(seconds * 1e6), n))
    ev = make_events(t, rng.integers(0, 64, n), rng.integers(0, 48, n), rng.integers(0, 2, n))
    ev["x"][0], ev["y"][0] = 63, 47  # so the sensor size is 64x48 whatever the reader infers
    path = tmp_path / "rec.npy"
    np.save(path, ev)
    return path, ev


class SlowSink(Node):
    """Sleeps in process (a consumer slower than the camera) and records when each batch arrived."""

    Config = NoParams
    arrivals: ClassVar[list[tuple[float, int, int, int]]] = []

    async def process(self, msg: Message) -> list[Message]:
        if msg.kind == EVENTS and msg.data is not None and msg.count:
            SlowSink.arrivals.append((time.perf_counter(), int(msg.data["t"][0]), int(msg.data["t"][-1]), msg.count))
            await asyncio.sleep(0.02)
        return []


def test_simulated_camera_drops_under_a_slow_consumer(tmp_path):
    path, ev = write_recording(tmp_path, seconds=2.0)
    SlowSink.arrivals = []
    graph = parse_graph(
        {
            "name": "slow",
            "hwm": 1,
            "log_every_s": 0,
            "links": ["cam -> sink"],
            "nodes": {
                "cam": {"type": "devices.simulated:SimulatedCamera", "path": str(path), "max_lag_us": 5_000},
                "sink": {"type": "test_devices:SlowSink"},
            },
        }
    )
    t0 = time.perf_counter()
    res = run_graph(graph)
    wall = time.perf_counter() - t0
    assert res["errors"] == {}
    assert wall < 4.0  # the camera kept real time: 2 s of stream, not 2,000 slices x 20 ms
    assert res["events_emitted"] + res["events_dropped"] == ev.shape[0]
    assert res["events_dropped"] > ev.shape[0] // 2
    assert res["drop_episodes"] >= 1
    assert res["nodes"]["sink"]["counters"]["events_in"] == res["events_emitted"]
    assert abs(res["drop_ratio"] - res["events_dropped"] / ev.shape[0]) < 1e-5
    # lag behind the wall clock stays bounded: arrival time minus the stream time of each batch's first event
    arr = np.array(SlowSink.arrivals, dtype=np.float64)
    lag = arr[:, 0] - arr[:, 1] / 1e6
    lag -= lag.min()
    assert lag.max() < 0.25, lag.max()


class AgeSink(Node):
    """Takes 5 ms per batch (slower than the camera) and records each processed batch's age and size."""

    Config = NoParams
    ages: ClassVar[list[tuple[float, int]]] = []

    async def process(self, msg: Message) -> list[Message]:
        if msg.kind == EVENTS and msg.count:
            AgeSink.ages.append(((time.time_ns() - msg.created_ns) / 1e6, msg.count))
            time.sleep(0.005)  # noqa: ASYNC251 - busy, as a computing stage is: the loop waits meanwhile
        return []


@pytest.mark.parametrize("transport", ["inproc", "ipc"])
def test_a_node_with_max_age_sheds_stale_input_whole_and_answers_only_fresh_input(tmp_path, transport):
    AgeSink.ages = []
    graph = parse_graph(
        {
            "name": "fresh",
            "transport": transport,
            "ipc_dir": str(tmp_path),
            "log_every_s": 0,
            "links": ["cam -> sink"],
            "nodes": {
                "cam": {"type": "simulated-camera", "rate": 100_000, "duration_s": 1.5, "max_lag_us": 1_000_000},
                "sink": {"type": "test_devices:AgeSink", "max_age_ms": 20},
            },
        },
        "fresh",
    )
    res = run_graph(graph)
    assert not res["errors"], res["errors"]
    sink = res["nodes"]["sink"]["counters"]
    # 1 ms batches at 5 ms each: most are shed, whole, and counted; nothing is lost unaccounted
    assert sink["shed"] > sink["events_in"] // 2
    assert sink["events_in"] == res["events_emitted"]
    assert sink["gaps"] == 0
    if transport == "inproc":  # the node's own records are visible here: what it computed on was fresh
        ages = [a for a, _ in AgeSink.ages]
        assert sum(n for _, n in AgeSink.ages) + sink["shed"] == sink["events_in"]
        assert len(ages) > 50
        assert max(ages) <= 20 + 5
    with pytest.raises(ConfigError, match="nodes.s.max_age_ms must be a number of ms >= 0"):
        parse_graph({"links": ["c -> s"], "nodes": {"c": {"type": "x"}, "s": {"type": "y", "max_age_ms": -1}}})


def test_simulated_camera_at_normal_speed_drops_nothing(tmp_path):
    path, ev = write_recording(tmp_path, seconds=0.5)
    src = SimulatedCamera("cam", SimulatedParams(path=str(path), max_lag_us=100_000), ctx())
    t0 = time.perf_counter()
    msgs = asyncio.run(collect(src, until=10**9))
    wall = time.perf_counter() - t0
    got = cat(msgs)
    assert src.dropped == 0
    assert src.emitted == ev.shape[0]
    # stamped like a live camera: wall-clock µs from the start, the file's spacing kept
    assert abs(int(got["t"][0]) - time.time_ns() // 1000) < 3_000_000
    assert np.array_equal(got["t"] - got["t"][0], ev["t"] - ev["t"][0])
    assert np.array_equal(got["x"], ev["x"])
    assert 0.45 < wall < 1.5  # paced in real time
    assert (msgs[0].width, msgs[0].height) == (64, 48)
    spans = [int(m.data["t"][-1] - m.data["t"][0]) for m in msgs]
    assert len(msgs) > 100
    assert np.median(spans) <= 2000


def test_simulated_camera_rate_mode_and_loop(tmp_path):
    src = SimulatedCamera(
        "cam", SimulatedParams(rate=200_000, duration_s=0.3, width=32, height=16, max_lag_us=200_000), ctx()
    )
    got = cat(asyncio.run(collect(src, until=10**9)))
    assert src.dropped == 0
    assert abs(got.shape[0] - 60_000) <= 200
    assert np.all(np.diff(got["t"]) >= 0)
    assert got["x"].max() < 32
    assert got["y"].max() < 16
    assert abs(got["t"][0] - time.time_ns() // 1000) < 2_000_000  # Unix µs
    path, ev = write_recording(tmp_path, seconds=0.1)
    loop = SimulatedCamera("cam", SimulatedParams(path=str(path), loop=True, speed=4.0, max_lag_us=1_000_000), ctx())
    got = cat(asyncio.run(collect(loop, until=2 * ev.shape[0] + 10)))
    assert np.all(np.diff(got["t"]) >= 0)
    period = int(ev["t"][-1] - ev["t"][0]) + 1000
    assert loop.dropped == 0, loop.results()
    # at speed 4 the wall-clock stamps run four times closer: laps a quarter period apart (to the µs)
    lap_shift = got["t"][ev.shape[0] : 2 * ev.shape[0]] - got["t"][: ev.shape[0]]
    assert np.abs(lap_shift - period / 4).max() <= 1
    assert np.abs((got["t"][: ev.shape[0]] - got["t"][0]) - (ev["t"] - ev["t"][0]) / 4).max() <= 1
    with pytest.raises(DeviceError, match="recording not found: .*nope.npy"):
        asyncio.run(SimulatedCamera("cam", SimulatedParams(path=str(tmp_path / "nope.npy")), ctx()).start())


# -- video --------------------------------------------------------------------------------------------------
def test_video_square_gives_on_at_leading_and_off_at_trailing_edge(tmp_path):
    import cv2

    path = tmp_path / "square.avi"
    w, h, side, step, frames = 96, 64, 16, 4, 12
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    for i in range(frames):
        img = np.full((h, w, 3), 60, np.uint8)
        x0 = 8 + i * step
        img[24 : 24 + side, x0 : x0 + side] = 220
        writer.write(img)
    writer.release()
    src = VideoSource("video", VideoParams(path=str(path)), ctx())
    msgs = asyncio.run(collect(src, until=10**9))
    ev = cat(msgs)
    assert msgs
    assert (msgs[0].width, msgs[0].height) == (w, h)
    assert src.results()["video_frames"] == frames
    on, off = ev[ev["p"] == 1], ev[ev["p"] == 0]
    assert on.shape[0] > 100
    assert off.shape[0] > 100
    # frame i (at i * 40 ms) moved the square right by `step`: ON where it arrived, OFF where it left
    i = np.ceil(ev["t"] / 40_000).astype(int)
    x0 = 8 + i * step
    lead = (ev["x"] >= x0 + side - step - 1) & (ev["x"] < x0 + side + 1)
    trail = (ev["x"] >= x0 - step - 1) & (ev["x"] < x0 + 1)
    assert np.mean(lead[ev["p"] == 1]) > 0.95
    assert np.mean(trail[ev["p"] == 0]) > 0.95
    assert np.all(ev["t"] % 1 == 0)
    assert ev["t"].max() <= (frames - 1) * 40_000
    with pytest.raises(DeviceError, match="video file not found: .*missing.avi"):
        asyncio.run(VideoSource("video", VideoParams(path=str(tmp_path / "missing.avi")), ctx()).start())


@pytest.mark.timeout(120)
def test_a_source_that_cannot_start_ends_the_whole_graph_at_once(tmp_path):
    """A camera that is not there fails in its start: it tells the nodes downstream that its stream has
    ended, so the graph stops with its error within seconds instead of each node waiting out the stop grace
    period (set to 60 s here; before, the graph took the grace period to end). Only the source has an error."""
    nodes = {
        "cam": {"type": "simulated-camera", "path": str(tmp_path / "missing.aedat4")},
        "encoder": encoder(16),
        "stdp": stdp((2, 16, 16), [conv(2, 8.0), fc(4, 10.0)]),
        "classifier": {"type": "classifier", "readout": "assignment", "classes": 2, "inputs": 4},
        "sink": {"type": "null"},
    }
    links = ["cam -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> sink"]
    cfg = write_graph(tmp_path / "nocam.toml", graph("nocam", links, nodes, transport="ipc", ipc_dir=str(tmp_path)))
    env = {**os.environ, "SPIKESTREAM_STOP_GRACE_S": "60"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--results", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
    )
    took = time.monotonic() - t0
    assert proc.returncode == 1
    assert took < 30, f"the graph took {took:.0f} s to end"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("spikestream: error")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "node cam:" in errors[0] or "nodes.cam:" in errors[0], proc.stderr[-2000:]
    assert "recording not found" in errors[0]
    assert "missing.aedat4" in errors[0]


class SlowStartSink(Node):
    """Takes 1.5 s to start (a checkpoint to restore, a broker to reach) and then keeps up."""

    Config = NoParams

    async def start(self) -> None:
        await asyncio.sleep(1.5)

    async def process(self, msg: Message) -> list[Message]:
        return []


@pytest.mark.parametrize("transport", ["ipc", "inproc"])
def test_a_live_source_streams_only_once_every_node_has_started(tmp_path, transport):
    """The graph's go waits for every node's start, not only for its sockets: a simulated camera whose
    consumer is still starting would otherwise fall 1.5 s behind at once and drop (before this, it dropped
    most of this half-second recording). The lag allowed here is generous (0.5 s), so that only a
    camera started too early can drop."""
    path, ev = write_recording(tmp_path, seconds=0.5)
    graph = parse_graph(
        {
            "name": "slowstart",
            "transport": transport,
            "hwm": 1,
            "log_every_s": 0,
            "links": ["cam -> sink"],
            "nodes": {
                "cam": {"type": "devices.simulated:SimulatedCamera", "path": str(path), "max_lag_us": 500_000},
                "sink": {"type": "test_devices:SlowStartSink"},
            },
        }
    )
    res = run_graph(graph)
    assert res["errors"] == {}
    assert res["events_dropped"] == 0
    assert res["events_emitted"] == ev.shape[0]
    assert res["nodes"]["sink"]["counters"]["events_in"] == ev.shape[0]


def test_a_camera_run_alone_waits_for_its_encoder_before_streaming(tmp_path):
    """`spikestream node` runs one node: a live source started before the node it feeds streams once that
    node has connected, instead of dropping what it could not send meanwhile (1.5 s here, three times
    the recording)."""
    path, ev = write_recording(tmp_path, seconds=0.5)
    nodes = {
        "cam": {"type": "simulated-camera", "path": str(path), "max_lag_us": 200000},
        "sink": {"type": "checksum"},
    }
    alone = graph("alone", ["cam -> sink"], nodes, transport="ipc", ipc_dir=str(tmp_path))
    cfg = write_graph(tmp_path / "alone.toml", alone)

    def node(name: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "pipeline.cli", "node", name, "--config", str(cfg)]
        return subprocess.Popen([*cmd, "--results", str(tmp_path / f"{name}.json")], stderr=subprocess.PIPE, text=True)

    cam = node("cam")
    time.sleep(1.5)
    sink = node("sink")
    for p in (cam, sink):
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err[-2000:]
    cam_res = json.loads((tmp_path / "cam.json").read_text())
    sink_res = json.loads((tmp_path / "sink.json").read_text())
    assert cam_res["events_dropped"] == 0
    assert cam_res["events_emitted"] == ev.shape[0]
    assert sink_res["sink_events"] == ev.shape[0]
