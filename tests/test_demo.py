"""The README's first command, ``spikestream demo``, at a reduced size: it learns, judges itself, writes
its results and plots, and a second run starts afresh."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.timeout(300)
def test_demo_learns_and_can_run_twice(tmp_path):
    cmd = [sys.executable, "-m", "pipeline.cli", "demo", "--out", str(tmp_path), "--train", "300", "--test", "100"]
    for _ in range(2):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verdict: it learned" in done.stdout
        results = json.loads((tmp_path / "results.json").read_text())
        assert results["errors"] == {}
        assert results["events_in"] > 1_000_000  # the stream ran (a resumed finished stream delivers nothing)
        assert results["samples"] == {"train": 300, "test": 100}
        # every decision is counted in the phase its sample belongs to
        assert [(p["train"], p["test"]) for p in results["phases_evaluated"]] == [(300, 0), (0, 100)]
        assert results["test_accuracy"] >= 0.3  # chance is 0.1
        assert (tmp_path / "state" / "stdp.npz").exists()
        assert sorted(p.suffix for p in (tmp_path / "plots").iterdir())
        assert all(p.suffix == ".png" for p in (tmp_path / "plots").iterdir())


def test_demo_leaves_a_state_folder_it_did_not_make_alone(tmp_path):
    """``--out`` pointing at a folder whose ``state/`` holds another graph's checkpoints must not wipe it."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "stdp.npz").write_bytes(b"someone else's learned weights")
    cmd = [sys.executable, "-m", "pipeline.cli", "demo", "--out", str(tmp_path), "--train", "5", "--test", "5"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "was not made by the demo" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "state" / "stdp.npz").read_bytes() == b"someone else's learned weights"
    for bad in (["--train", "0"], ["--test", "-5"]):
        done = subprocess.run([*cmd[:5], str(tmp_path / "x"), *bad], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert "must be >= 1" in done.stderr
        assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "path",
    [
        "spikestream-demo/results.json",  # spikestream demo
        "spikestream-demo/plots/features.png",
        "plots/accuracy.png",  # spikestream plot
        "state/camera/stdp.g000000001.npz",  # the camera configs' state folders
        "state/camera-teach/classifier.npz",
        "nmnist-state/src.npz",  # the N-MNIST quick start
        "nmnist.json",
        "keys/camera.key_secret",  # spikestream keys
        "seven.gif",  # spikestream render
        "disk.mp4",
    ],
)
def test_what_the_readme_journeys_write_in_the_checkout_is_ignored_by_git(path):
    """A user who follows the README from the checkout does not find its outputs among their changes."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("needs git and a checkout")
    done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=repo, timeout=30, check=False)
    assert done.returncode == 0, f"{path} is not ignored"
