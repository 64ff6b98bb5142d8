"""Checkpoints are atomic and refuse corrupt files with the path named."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.checkpoint import load_state, save_state
from pipeline.errors import CheckpointError


def test_round_trip_and_overwrite(tmp_path):
    p = tmp_path / "s" / "node.npz"
    save_state(p, {"w": np.arange(6.0).reshape(2, 3), "n": np.int64(7)})
    save_state(p, {"w": np.ones(3)})
    back = load_state(p)
    assert list(back) == ["w"] and np.array_equal(back["w"], np.ones(3))
    assert [f.name for f in p.parent.iterdir()] == ["node.npz"]  # no temporary files left


def test_corrupt_and_missing(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(CheckpointError, match=r"bad\.npz is unreadable or corrupt"):
        load_state(p)
    with pytest.raises(CheckpointError, match=r"checkpoint not found"):
        load_state(tmp_path / "none.npz")


RESUME_GRAPH = """
name = "resume"
transport = "ipc"
ipc_dir = "{ipc}"
links = ["digits -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate"]
log_every_s = 0
checkpoint_s = 0.2

[nodes.digits]
type = "saccades"
digits = "font"
font_train = 400
font_test = 100
seed = 3
batch = 2000
phases = [
    {{ split = "train", samples = 400, passes = 2 }},
    {{ split = "train", samples = 100, features = false, relabel = true }},
    {{ split = "test", samples = 100, features = false, classifier = false }},
]

[nodes.encoder]
type = "encoder"
output = [2, 34, 34]

[nodes.stdp]
type = "stdp"
input = [2, 34, 34]
seed = 2
layers = [
    {{ type = "conv", maps = 4, kernel = 5, th_learn = 8.0, th_inf = 8.0, a_minus = -0.01 }},
    {{ type = "pool", size = 2 }},
    {{ type = "conv", maps = 8, kernel = 5, th_learn = 30.0, th_inf = 30.0, a_minus = -0.01 }},
    {{ type = "pool", size = 2 }},
    {{ type = "fc", neurons = 40, th_learn = 30.0, th_inf = 30.0, a_minus = -0.01, wta_inf = true }},
]

[nodes.classifier]
type = "classifier"
readout = "assignment"
classes = 10
inputs = 40

[nodes.evaluate]
type = "evaluate"
classes = 10
"""


@pytest.mark.timeout(240)
def test_graph_stopped_by_sigterm_resumes_exactly_where_it_stopped(tmp_path):
    """A whole graph (source position included) stopped mid-stream by SIGTERM and started again on its
    checkpoints ends bit-identical to an uninterrupted run: the source skips what it had delivered (a
    relabel already done is not repeated), every other node continues from its own state."""
    import json
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "resume.toml"
    cfg.write_text(RESUME_GRAPH.format(ipc=tmp_path))

    def run(state: str, out: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--state", str(tmp_path / state), "-q"]
        return subprocess.Popen([*cmd, "--results", str(tmp_path / out)], stderr=subprocess.PIPE, text=True)

    whole = run("whole", "whole.json")
    assert whole.wait(timeout=200) == 0, whole.stderr.read() if whole.stderr else ""

    first = run("cut", "first.json")
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "cut" / "stdp.npz").exists():  # the graph is learning: stop it mid-stream
            assert first.poll() is None and time.monotonic() < deadline, "first run ended before its first checkpoint"
            time.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
    part = json.loads((tmp_path / "first.json").read_text())
    total = json.loads((tmp_path / "whole.json").read_text())["samples_replayed"]
    assert 0 < part["samples_replayed"] < total  # it did stop mid-stream

    second = run("cut", "second.json")
    assert second.wait(timeout=200) == 0, second.stderr.read() if second.stderr else ""
    for node in ("digits", "encoder", "stdp", "classifier", "evaluate"):
        a = load_state(tmp_path / "whole" / f"{node}.npz")
        b = load_state(tmp_path / "cut" / f"{node}.npz")
        assert a.keys() == b.keys(), node
        for key in a:
            assert np.array_equal(a[key], b[key]), f"{node}.{key} differs after resuming"
    whole_r = json.loads((tmp_path / "whole.json").read_text())
    second_r = json.loads((tmp_path / "second.json").read_text())
    assert second_r["test_accuracy"] == whole_r["test_accuracy"]
    assert second_r["confusion"] == whole_r["confusion"]
