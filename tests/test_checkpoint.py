"""Checkpoints are atomic, refuse corrupt files with the path named, and let a stopped or crashed graph
go on bit-identically."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest
from graphs import DIGIT_LAYERS, conv, encoder, fc, font_digits, graph, stdp, write_graph

from pipeline.checkpoint import GENERATION_KEY, generations, load_state, save_state
from pipeline.errors import CheckpointError
from recordings.messages import read_messages


def test_round_trip_and_overwrite(tmp_path):
    p = tmp_path / "s" / "node.npz"
    save_state(p, {"w": np.arange(6.0).reshape(2, 3), "n": np.int64(7)})
    save_state(p, {"w": np.ones(3)})
    back = load_state(p)
    assert list(back) == ["w"]
    assert np.array_equal(back["w"], np.ones(3))
    assert [f.name for f in p.parent.iterdir()] == ["node.npz"]  # no temporary files left


def test_corrupt_and_missing(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(CheckpointError, match=r"bad\.npz is unreadable or corrupt"):
        load_state(p)
    with pytest.raises(CheckpointError, match=r"checkpoint not found"):
        load_state(tmp_path / "none.npz")


def resume_graph(ipc_dir: Path) -> dict:
    """Font digits taught (two passes), relabelled, then tested, with a checkpoint every 0.2 s and the
    feature extractor's output recorded (each run sets the log's path)."""
    phases = [
        {"split": "train", "samples": 400, "passes": 2},
        {"split": "train", "samples": 100, "features": False, "relabel": True},
        {"split": "test", "samples": 100, "features": False, "classifier": False},
    ]
    nodes = {
        "digits": font_digits(400, 100, seed=3, batch=2000, phases=phases),
        "encoder": encoder(34),
        "stdp": stdp((2, 34, 34), DIGIT_LAYERS, seed=2),
        "classifier": {"type": "classifier", "readout": "assignment", "classes": 10, "inputs": 40},
        "evaluate": {"type": "evaluate", "classes": 10},
        "record": {"type": "record", "path": "set by each run"},
    }
    links = ["digits -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate", "stdp -> record"]
    return graph("resume", links, nodes, transport="ipc", ipc_dir=str(ipc_dir), log_every_s=0, checkpoint_s=0.2)


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

    cfg = write_graph(tmp_path / "resume.toml", resume_graph(tmp_path))

    def run(state: str, out: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--state", str(tmp_path / state), "-q"]
        cmd += ["--set", f"nodes.record.path={tmp_path / state}.spklog"]
        return subprocess.Popen([*cmd, "--results", str(tmp_path / out)], stderr=subprocess.PIPE, text=True)

    whole = run("whole", "whole.json")
    _, err = whole.communicate(timeout=200)  # (reads stderr to its end, which closes the pipe)
    assert whole.returncode == 0, err

    first = run("cut", "first.json")
    try:
        deadline = time.monotonic() + 120
        while max(generations(tmp_path / "cut", "stdp"), default=0) < 3:  # learning: stop it mid-stream
            assert first.poll() is None, "first run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within the deadline"
            time.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
        first.communicate(timeout=30)
    part = json.loads((tmp_path / "first.json").read_text())
    total = json.loads((tmp_path / "whole.json").read_text())["samples_replayed"]
    assert 0 < part["samples_replayed"] < total  # it did stop mid-stream

    second = run("cut", "second.json")
    _, err = second.communicate(timeout=200)
    assert second.returncode == 0, err
    assert_same_end(tmp_path / "whole", tmp_path / "cut", tmp_path / "whole.json", tmp_path / "second.json")


RESUME_NODES = ("digits", "encoder", "stdp", "classifier", "evaluate")


def assert_same_end(whole_dir, cut_dir, whole_json, cut_json) -> None:
    """Every node's final state and the evaluated figures are the same (the checkpoint generation
    number is bookkeeping: it counts checkpoints, which depend on timing)."""
    import json

    for node in RESUME_NODES:
        a = load_state(whole_dir / f"{node}.npz")
        b = load_state(cut_dir / f"{node}.npz")
        a.pop(GENERATION_KEY, None)
        b.pop(GENERATION_KEY, None)
        assert a.keys() == b.keys(), node
        for key in a:
            assert np.array_equal(a[key], b[key]), f"{node}.{key} differs after resuming"
    whole_r = json.loads(whole_json.read_text())
    cut_r = json.loads(cut_json.read_text())
    assert cut_r["test_accuracy"] == whole_r["test_accuracy"]
    assert cut_r["confusion"] == whole_r["confusion"]

    # the record sink's log (cut back to the checkpoint on resuming) holds the stream exactly once
    def log(path: str) -> list:
        return [
            (m.kind, m.command, None if m.data is None else {f: m.data[f].tolist() for f in m.data.dtype.names})
            for m in read_messages(path)
        ]

    whole_log, cut_log = log(f"{whole_dir}.spklog"), log(f"{cut_dir}.spklog")
    assert len(whole_log) > 10
    assert cut_log == whole_log


@pytest.mark.timeout(300)
def test_graph_killed_resumes_from_the_newest_consistent_cut(tmp_path):
    """kill -9 of the whole graph mid-stream: on restart every node restores the newest checkpoint
    generation that all of them completed (the source's position included), so the run ends
    bit-identical to an uninterrupted one although the nodes were at different points when killed."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    from pipeline.checkpoint import newest_common_generation

    cfg = write_graph(tmp_path / "resume.toml", resume_graph(tmp_path))

    def run(state: str, out: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--state", str(tmp_path / state), "-q"]
        cmd += ["--set", f"nodes.record.path={tmp_path / state}.spklog"]
        env = {**os.environ, "TMPDIR": str(tmp_path)}  # what a killed run cannot clean up stays in tmp_path
        return subprocess.Popen(
            [*cmd, "--results", str(tmp_path / out)],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=env,
        )

    whole = run("whole", "whole.json")
    _, err = whole.communicate(timeout=200)  # (reads stderr to its end, which closes the pipe)
    assert whole.returncode == 0, err

    cut = tmp_path / "cut"

    def worth_killing() -> bool:
        # learning is under way, every node has completed a few generations, and the source has kept
        # positions that have not reached every node yet (the nodes' newest checkpoints are not one cut)
        common = newest_common_generation(cut, list(RESUME_NODES)) or 0
        return common >= 3 and max(generations(cut, "digits"), default=0) > common

    first = run("cut", "first.json")
    try:
        deadline = time.monotonic() + 120
        while not worth_killing():
            assert first.poll() is None, "first run ended before being killed"
            assert time.monotonic() < deadline, "no checkpoint within the deadline"
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    assert not (tmp_path / "first.json").exists()  # it did die without finishing
    kept = {node: generations(cut, node) for node in RESUME_NODES}
    newest = {node: load_state(cut / f"{node}.npz")[GENERATION_KEY].item() for node in RESUME_NODES}

    second = run("cut", "second.json")
    _, log = second.communicate(timeout=200)
    assert second.returncode == 0, log
    resumed = re.search(r"resuming after the (\d+) messages already delivered", log)
    assert resumed, log
    assert int(resumed.group(1)) > 0, log  # the source went on from its kept position
    assert_same_end(tmp_path / "whole", cut, tmp_path / "whole.json", tmp_path / "second.json")
    # what the test is about: the nodes' own newest checkpoints were not one cut when the graph died
    print(f"generations kept at the kill: {kept}; newest per node: {newest}")  # noqa: T201 (shown with -rP)


def test_consistent_cuts_need_one_source_and_no_fan_in():
    from pipeline.checkpoint import cut_members
    from pipeline.config import parse_graph

    def graph(links, taps=()):
        names = {n for link in [*links, *taps] for n in link.split(" -> ")}
        return parse_graph({"nodes": {n: {"type": "identity"} for n in names}, "links": links, "taps": list(taps)})

    chain = graph(["src -> a", "a -> b", "a -> c"], taps=["b -> console"])
    assert cut_members(chain) == ["a", "b", "c", "src"]  # the tap consumer may miss markers: not a member
    assert cut_members(graph(["src -> a", "teach -> a"])) is None  # two sources
    assert cut_members(graph(["src -> a", "src -> b", "a -> c", "b -> c"])) is None  # a diamond needs alignment


def test_restore_picks_the_newest_common_generation_or_says_why_not(tmp_path, caplog):
    """A node restores the newest generation all members completed and forgets its newer ones; with no
    generation in common it falls back to its own newest checkpoint, loudly."""
    import logging

    from pipeline.checkpoint import NodeCheckpoints, cut_members, save_generation
    from pipeline.config import parse_graph
    from pipeline.node import Counters
    from pipeline.validation import validate_graph

    g = parse_graph({"nodes": {"src": {"type": "synthetic"}, "a": {"type": "identity"}}, "links": ["src -> a"]})
    nodes = validate_graph(g)

    def checkpoints(name: str) -> NodeCheckpoints:
        node = nodes[name].create(g)
        return NodeCheckpoints(node, str(tmp_path), members=cut_members(g), period_s=0, counters=Counters())

    save_generation(tmp_path, "src", 5, {})
    save_generation(tmp_path, "a", 4, {})
    with caplog.at_level(logging.WARNING):
        checkpoints("a").restore()
    assert "no checkpoint generation completed by every node" in caplog.text
    save_generation(tmp_path, "src", 4, {})
    save_generation(tmp_path, "src", 6, {})  # the markers of 5 and 6 had not reached "a" yet
    src = checkpoints("src")
    src.restore()
    assert generations(tmp_path, "src") == [4]
    assert src.generation == 4


def test_a_checkpoint_of_another_graph_is_refused_naming_the_file(tmp_path):
    """Two graphs pointed at one state folder (the README's camera and N-MNIST quick starts both suggested
    `state`): the second refuses the first's checkpoint in one line that names the file, the node, what the
    file holds and what to do, and leaves the checkpoint as it was."""
    import subprocess
    import sys

    def learner(readout: str) -> Path:
        nodes = {
            "src": {"type": "synthetic", "events": 20000, "width": 16, "height": 16},
            "stdp": stdp((2, 16, 16), [conv(2, 8.0), fc(8, 10.0)]),
            "classifier": {"type": "classifier", "readout": readout, "classes": 4, "inputs": 8},
        }
        doc = graph(readout, ["src -> stdp", "stdp -> classifier"], nodes, transport="inproc")
        return write_graph(tmp_path / f"{readout}.toml", doc)

    def run(cfg: Path) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--state", str(tmp_path / "state"), "-q"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    first = run(learner("assignment"))
    assert first.returncode == 0, first.stderr
    kept = (tmp_path / "state" / "classifier.npz").read_bytes()
    second = run(learner("supervised"))
    assert second.returncode == 1
    err = second.stderr.strip().splitlines()[-1]
    folder = re.escape(str(tmp_path / "state"))
    assert re.search(rf"checkpoint {folder}/classifier(\.g\d+)?\.npz does not fit nodes\.classifier: ", err), err
    assert "holds the state of a LabelAssignmentReadout, not of a SupervisedClassifier" in err
    assert "its own --state folder" in err
    assert "array(" not in err
    assert (tmp_path / "state" / "classifier.npz").read_bytes() == kept
