"""CURVE: a two-process tcp graph with authenticated, encrypted links delivers every event, and a peer
whose key is not allowed gets nothing through (and the refusal is logged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from graphs import free_port, graph, write_graph

from pipeline.security import write_keypair


def node(name: str, cfg, out) -> subprocess.Popen:
    env = dict(os.environ, SPIKESTREAM_STOP_GRACE_S="2")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "-v", "node", name, "--config", str(cfg), "--results", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def keys(tmp_path):
    made = {n: write_keypair(n, tmp_path / "keys") for n in ("camera", "learner", "intruder")}
    return {n: {"public": p, "secret": s} for n, (p, s) in made.items()}


def config(tmp_path, keys, camera_key: str) -> Path:
    """A camera whose link to the learner is CURVE-protected; the camera signs with ``camera_key``'s secret
    and the learner allows only the real camera's public key."""
    camera = {
        "type": "synthetic",
        "events": 100000,
        "batch": 5000,
        "curve": {"secret_key": str(keys[camera_key]["secret"]), "server_key": str(keys["learner"]["public"])},
    }
    learner = {
        "type": "checksum",
        "address": f"tcp://127.0.0.1:{free_port()}",
        "curve": {"secret_key": str(keys["learner"]["secret"]), "allow": [str(keys["camera"]["public"])]},
    }
    doc = graph("curve", ["camera -> learner"], {"camera": camera, "learner": learner}, transport="tcp", log_every_s=0)
    return write_graph(tmp_path / f"curve-{camera_key}.toml", doc)


@pytest.fixture
def procs():
    """Processes started by a test; killed at the end even when an assertion failed."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.communicate(timeout=10)


@pytest.mark.timeout(60)
def test_curve_link_delivers_everything(tmp_path, keys, procs):
    cfg = config(tmp_path, keys, "camera")
    learner = node("learner", cfg, tmp_path / "l.json")
    camera = node("camera", cfg, tmp_path / "c.json")
    procs += [learner, camera]
    for p in (camera, learner):
        _, err = p.communicate(timeout=40)
        assert p.returncode == 0, err
    sink = json.loads((tmp_path / "l.json").read_text())
    src = json.loads((tmp_path / "c.json").read_text())
    assert sink["sink_events"] == 100_000
    assert sink["sink_checksum"] == src["source_checksum"]


@pytest.mark.timeout(60)
def test_wrong_key_is_refused_and_logged(tmp_path, keys, procs):
    cfg = config(tmp_path, keys, "intruder")
    learner = node("learner", cfg, tmp_path / "l.json")
    intruder = node("camera", cfg, tmp_path / "c.json")
    procs += [learner, intruder]
    time.sleep(4)
    assert intruder.poll() is None  # its data never got through, so it is still waiting to send
    for p in (intruder, learner):
        p.terminate()
    intruder.communicate(timeout=20)
    _, learner_err = learner.communicate(timeout=20)
    assert "refused a CURVE peer" in learner_err
    sink = json.loads((tmp_path / "l.json").read_text())
    assert sink["nodes"]["learner"]["counters"]["events_in"] == 0


def test_protected_input_with_plain_local_outputs(tmp_path, keys):
    """A learning-box node may take CURVE input from the camera box and feed local nodes in plain."""
    from pipeline.config import parse_graph
    from pipeline.errors import ConfigError
    from pipeline.security import curve_settings

    learner = {"secret_key": str(keys["learner"]["secret"]), "allow": [str(keys["camera"]["public"])]}
    raw = {
        "transport": "tcp",
        "links": ["camera -> learner", "learner -> sink"],
        "nodes": {
            "camera": {"type": "synthetic"},
            "learner": {"type": "identity", "curve": learner},
            "sink": {"type": "checksum"},
        },
    }
    server, client, allowed = curve_settings(parse_graph(raw, "g.toml"), "learner")
    import tomllib

    camera_public = tomllib.loads(keys["camera"]["public"].read_text())["public"].encode()
    learner_public = tomllib.loads(keys["learner"]["public"].read_text())["public"].encode()
    assert client is None  # plain outputs
    assert server is not None
    assert server.public == learner_public
    assert allowed == [camera_public]
    raw["nodes"]["sink"]["curve"] = {"secret_key": str(keys["learner"]["secret"]), "server_key": "x"}
    raw["links"] = ["camera -> learner"]
    with pytest.raises(ConfigError, match="no downstream link"):
        curve_settings(parse_graph(raw, "g.toml"), "sink")
