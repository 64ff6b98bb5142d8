"""Checkpoints are atomic, refuse corrupt files with the path named, and let a stopped or crashed graph
go on bit-identically."""

from __future__ import annotations

import contextlib
import errno
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
    """A node restores the newest generation all members completed and forgets its newer ones once the
    graph streams (not before: a graph refused at its start changes nothing); with no generation in
    common it falls back to its own newest checkpoint, loudly."""
    import logging

    from pipeline.checkpoint import cut_members, save_generation
    from pipeline.config import parse_graph
    from pipeline.node import Counters
    from pipeline.node_checkpoints import NodeCheckpoints
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
    assert src.generation == 4
    assert generations(tmp_path, "src") == [4, 5, 6]  # restoring reads only
    src.begin()
    assert generations(tmp_path, "src") == [4]


def learner(folder: Path, readout: str, transport: str = "inproc") -> Path:
    """``src -> stdp -> classifier`` on 16x16 synthetic events, with ``readout`` (assignment, supervised)."""
    nodes = {
        "src": {"type": "synthetic", "events": 20000, "width": 16, "height": 16},
        "stdp": stdp((2, 16, 16), [conv(2, 8.0), fc(8, 10.0)]),
        "classifier": {"type": "classifier", "readout": readout, "classes": 4, "inputs": 8},
    }
    doc = graph(readout, ["src -> stdp", "stdp -> classifier"], nodes, transport=transport, ipc_dir=str(folder))
    return write_graph(folder / f"{readout}-{transport}.toml", doc)


def folder_contents(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` by name, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("transport", ["inproc", "ipc"])
def test_a_checkpoint_of_another_graph_is_refused_naming_the_file(tmp_path, transport):
    """Two graphs pointed at one state folder (the README's camera and N-MNIST quick starts both suggested
    `state`): the second refuses the first's checkpoint in one line that names the file, the node, what the
    file holds and what to do, alone (no node table, no resume hint), promptly (one process per node too:
    no node waits for a peer that will never stream), and every file of the folder stays as it was."""
    import subprocess
    import sys
    import time

    def run(cfg: Path) -> tuple[subprocess.CompletedProcess[str], float]:
        cmd = [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--state", str(tmp_path / "state")]
        t0 = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=200)
        return done, time.monotonic() - t0

    first, took_first = run(learner(tmp_path, "assignment", transport))
    assert first.returncode == 0, first.stderr
    kept = folder_contents(tmp_path / "state")
    assert any(name.startswith("stdp.g") for name in kept)
    second, took = run(learner(tmp_path, "supervised", transport))
    assert second.returncode == 1
    err = second.stderr.strip().splitlines()[-1]
    folder = re.escape(str(tmp_path / "state"))
    assert re.search(rf"checkpoint {folder}/classifier(\.g\d+)?\.npz does not fit nodes\.classifier: ", err), err
    assert "holds the state of a LabelAssignmentReadout, not of a SupervisedClassifier" in err
    assert "its own --state folder" in err
    assert "array(" not in err
    assert second.stdout == ""  # the error alone: no summary of a run that never started
    assert [line for line in second.stderr.splitlines() if "ERROR" in line or "error" in line] == [err]
    assert "did not confirm" not in second.stderr
    assert folder_contents(tmp_path / "state") == kept  # names and bytes
    assert took < took_first + 10, f"the refused start took {took:.0f} s, the whole first run {took_first:.0f} s"


def test_a_corrupt_newest_generation_falls_back_to_the_one_before_said_in_one_line(tmp_path, caplog):
    """Each node keeps the two newest complete generations. When a file of the newest does not read
    back, every node resumes from the one before, said once; when none reads back the start is refused
    naming the file, and the folder is left exactly as it was."""
    import logging

    from pipeline.config import load_graph
    from pipeline.errors import SpikestreamError
    from pipeline.runner import run_graph

    nodes = {
        "src": {"type": "synthetic", "events": 20000, "width": 16, "height": 16},
        "stdp": stdp((2, 16, 16), [conv(2, 8.0), fc(8, 10.0)]),
        "sink": {"type": "null"},  # (a classifier would refuse the synthetic stream starting again at t = 0)
    }
    cfg = write_graph(tmp_path / "g.toml", graph("g", ["src -> stdp", "stdp -> sink"], nodes, transport="inproc"))
    state = tmp_path / "state"
    for _ in range(2):
        assert run_graph(load_graph(cfg), state_dir=str(state))["errors"] == {}
    assert [generations(state, n) for n in ("src", "stdp", "sink")] == [[1, 2]] * 3
    newest = state / "stdp.g000000002.npz"
    newest.write_bytes(newest.read_bytes()[:-40])  # cut short, as a full disk or a crash of the disk leaves it
    with caplog.at_level(logging.INFO):
        results = run_graph(load_graph(cfg), state_dir=str(state))
    assert results["errors"] == {}
    said = [r.getMessage() for r in caplog.records if "the newest that every node can read" in r.getMessage()]
    assert len(said) == 1, said
    assert "stdp.g000000002.npz is unreadable or corrupt" in said[0]
    assert "from checkpoint generation 1" in said[0]
    assert f"restored state from {state / 'stdp.g000000001.npz'}" in caplog.text
    assert generations(state, "stdp") == [1, 2]  # generation 2 written anew by this run
    load_state(state / "stdp.g000000002.npz")

    for g in (1, 2):
        path = state / f"stdp.g00000000{g}.npz"
        path.write_bytes(path.read_bytes()[:-40])
    before = folder_contents(state)
    with pytest.raises(SpikestreamError, match=r"stdp\.g000000002\.npz is unreadable or corrupt.*no older checkpoint"):
        run_graph(load_graph(cfg), state_dir=str(state))
    assert folder_contents(state) == before


def test_a_state_folder_that_becomes_a_file_gives_a_checkpoint_error_naming_it(tmp_path):
    """The folder's own failures (``mkdir``, the temporary file) are a ``CheckpointError`` naming the
    checkpoint too, not a raw ``OSError`` that ends the node."""
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*state/node\.npz: "):
        save_state(tmp_path / "state" / "node.npz", {"w": np.ones(3)})
    (tmp_path / "ro").mkdir()

    def full(*_args, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("pipeline.checkpoint.tempfile.mkstemp", full)
        with pytest.raises(CheckpointError, match=r"ro/node\.npz: No space left on device"):
            save_state(tmp_path / "ro" / "node.npz", {"w": np.ones(3)})


@pytest.mark.timeout(120)
def test_a_full_disk_mid_run_costs_no_learning_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, caplog):
    """The disk fills up after the first checkpoint: every node keeps learning to the end of the stream,
    each retries with a backoff, logs its first failure once as an error (not one line per try) and counts
    them; the run's error is that its last checkpoint failed, and the last checkpoint written stays the one
    a restart restores."""
    import logging
    import os
    import tempfile

    from pipeline.checkpoint import plan_restore
    from pipeline.config import load_graph
    from pipeline.runner import run_graph

    state = tmp_path / "state"
    doc = graph(
        "full",
        ["src -> stdp", "stdp -> classifier"],
        {
            # paced over 2 s, so that retries are due while the stream lasts, on any machine
            "src": {"type": "synthetic", "events": 400_000, "width": 16, "height": 16, "batch": 2000, "rate": 2e5},
            "stdp": stdp((2, 16, 16), [conv(2, 8.0), fc(8, 10.0)]),
            "classifier": {"type": "classifier", "readout": "assignment", "classes": 4, "inputs": 8},
        },
        transport="inproc",
        checkpoint_s=0.02,
        log_every_s=0,
    )
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kw):
        if ".g000000001.npz" not in kw["prefix"]:  # the first generation is written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkstemp(*args, **kw)

    monkeypatch.setattr("pipeline.checkpoint.tempfile.mkstemp", mkstemp)
    monkeypatch.setattr("pipeline.node_checkpoints.RETRY_FIRST_S", 0.1)
    with caplog.at_level(logging.WARNING):
        results = run_graph(load_graph(write_graph(tmp_path / "full.toml", doc)), state_dir=str(state))
    nodes = results["nodes"]
    assert nodes["stdp"]["counters"]["events_in"] == 400_000  # learned to the end
    assert nodes["classifier"]["counters"]["events_in"] == nodes["stdp"]["counters"]["events_out"]
    assert nodes["src"]["counters"]["checkpoint_failures"] >= 2  # the source retried
    for name in ("src", "stdp", "classifier"):
        assert nodes[name]["counters"]["checkpoints"] == 1
        assert "final checkpoint: cannot write checkpoint" in results["errors"][name]
        assert "No space left on device" in results["errors"][name]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum("src: cannot write checkpoint" in e for e in errors) == 1, errors
    assert "learning goes on" in errors[0]
    assert any("checkpoints could not be written" in w for w in nodes["src"]["results"]["warnings"])
    assert plan_restore(state, ["classifier", "src", "stdp"]).generation == 1
    assert not list(state.glob("*.tmp"))


def test_checkpoint_retries_back_off_and_recover(tmp_path, monkeypatch, caplog):
    """After a failed save the next try waits 1 s, then 2, 4 ... up to the period; a save that works again
    says so and the period counts as before."""
    import logging

    from pipeline.config import parse_graph
    from pipeline.node import Counters
    from pipeline.node_checkpoints import NodeCheckpoints
    from pipeline.validation import validate_graph

    g = parse_graph({"nodes": {"src": {"type": "synthetic"}, "sink": {"type": "checksum"}}, "links": ["src -> sink"]})
    node = validate_graph(g)["sink"].create(g)
    monkeypatch.setattr(node, "snapshot", lambda: {"w": np.ones(2)})
    now = [100.0]
    monkeypatch.setattr("pipeline.node_checkpoints.time.monotonic", lambda: now[0])
    counters = Counters()
    cp = NodeCheckpoints(node, str(tmp_path / "file"), members=None, period_s=10.0, counters=counters)
    cp.restore()
    cp.begin()
    (tmp_path / "file").write_text("the folder is gone")
    waits = []
    with caplog.at_level(logging.WARNING):
        for _ in range(6):
            with pytest.raises(CheckpointError):
                cp.save()
            start = now[0]
            while not cp.due():
                now[0] += 0.5
            waits.append(now[0] - start)
        assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
        assert counters.checkpoint_failures == 6
        assert sum(r.levelno == logging.ERROR for r in caplog.records) == 1
        (tmp_path / "file").unlink()
        cp.save()
    assert "checkpoints are written again, after 6 failed tries" in caplog.text
    assert counters.checkpoints == 1
    assert not cp.due()
    now[0] += 10.0
    assert cp.due()


@pytest.mark.parametrize(
    ("make", "option", "words"),
    [
        ("file", "--state", "is a file, not a folder"),
        ("under-a-file", "--state", "afile is a file, not a folder"),
        ("unwritable", "--state", "cannot write in"),
        ("file", "state_dir", "is a file, not a folder"),
    ],
)
def test_a_state_folder_that_cannot_be_written_is_refused_before_the_run(
    tmp_path, monkeypatch, capsys, make, option, words
):
    """``--state`` (or the graph's ``state_dir``) naming a file, a folder under a file, or a folder this
    user cannot write in (read-only; simulated for root, whom permissions do not stop) is refused in one
    line naming the option, before any node starts."""
    import os

    from graphs import chain

    from pipeline.cli import main

    (tmp_path / "afile").write_text("")
    state = {"file": tmp_path / "afile", "under-a-file": tmp_path / "afile" / "state"}.get(make, tmp_path / "ro")
    if make == "unwritable":
        state.mkdir()
        if os.geteuid() != 0:
            state.chmod(0o555)
        else:
            real_access = os.access
            monkeypatch.setattr("pipeline.checkpoint.os.access", lambda p, m: Path(p) != state and real_access(p, m))
    doc = chain(tmp_path, "inproc", events=10, tag="st")
    args = []
    if option == "state_dir":
        doc["state_dir"] = str(state)
    else:
        args = ["--state", str(state)]
    cfg = write_graph(tmp_path / "g.toml", doc)
    assert main(["run", str(cfg), *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # nothing ran
    assert err.count("\n") == 1
    where = f"{cfg}: state_dir" if option == "state_dir" else "--state"
    assert err.startswith(f"spikestream: error: {where} {state}: ")
    assert words in err
