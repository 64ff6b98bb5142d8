"""``spikestream sweep`` on a real local Ray (2 CPUs, one Ray for the module): a small sweep over the demo's
source, its table against the trials' own results files, a resumed interruption, ASHA stopping a bad
configuration, a raising trial, and the refusal to select on test data."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from graphs import free_port

from nodes.sweep.spec import load_sweep
from nodes.sweep.toml_text import toml_document, toml_value
from pipeline.errors import ConfigError
from pipeline.overrides import apply_overrides

#: The demo graph made tiny: 40 digits learn, 20 test digits, a small network, a curve point every 5.
TINY = [
    "nodes.digits.font_train=120",
    "nodes.digits.font_test=20",
    (
        'nodes.digits.phases=[{ split = "train[:40]", samples = 40 }, '
        '{ split = "test", samples = 20, features = false, classifier = false }]'
    ),
    "nodes.stdp.layers[2].maps=8",
    "nodes.stdp.layers[4].neurons=50",
    "nodes.classifier.inputs=50",
    "nodes.evaluate.curve_every=5",
    "nodes.evaluate.window=20",
    "nodes.console.summary_every_s=0.0",
]
#: Tuning on 20 digits held out of the training split, drawn by a seed of their own.
VALIDATION = [
    {"split": "train[:40]", "samples": 40},
    {"split": "train[40:]", "samples": 20, "features": False, "classifier": False, "seed": 3},
]


def write_sweep(folder: Path, body: str, *, fixed: dict[str, Any] | None = None) -> Path:
    """A sweep file over the tiny demo graph, with the validation phases unless ``fixed`` says otherwise."""
    raw = tomllib.loads(resources.files("nodes").joinpath("demo.toml").read_text())
    (folder / "tiny.toml").write_text(toml_document(apply_overrides(raw, TINY, "demo.toml")))
    fixed = {"nodes.digits.phases": VALIDATION} if fixed is None else fixed
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in fixed.items()]
    path = folder / "sweep.toml"
    path.write_text('base = "tiny.toml"\n' + body.strip() + "\n[fixed]\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One local Ray of 2 CPUs for the module; yields its address (another driver may join it)."""
    ray = pytest.importorskip("ray", reason="Ray Tune is not installed (pip install 'spikestream[sweep]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def table(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open() as f:
        return list(csv.DictReader(f))


# -- honest selection: no Ray needed ---------------------------------------------------------------------------
def test_a_sweep_selecting_on_a_test_split_is_refused(tmp_path: Path) -> None:
    on_test = {"nodes.digits.phases": [{"split": "train[:40]"}, {"split": "test", "classifier": False}]}
    with pytest.raises(ConfigError, match="evaluates on split 'test'"):
        load_sweep(write_sweep(tmp_path, "", fixed=on_test))
    with pytest.raises(ConfigError, match="selects on test data"):
        load_sweep(write_sweep(tmp_path, 'metric = "test_accuracy"'))
    assert load_sweep(write_sweep(tmp_path, "allow_test = true", fixed=on_test)).spec.allow_test


def test_a_validation_phase_that_learning_has_seen_is_refused(tmp_path: Path) -> None:
    seen = {"nodes.digits.phases": [{"split": "train"}, {"split": "train[40:]", "classifier": False}]}
    with pytest.raises(ConfigError, match="must be held out of learning"):
        load_sweep(write_sweep(tmp_path, "", fixed=seen))


def test_a_space_key_that_is_not_in_the_graph_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="thresold"):
        load_sweep(write_sweep(tmp_path, '[space]\n"nodes.classifier.thresold" = { grid = [1.0] }'))


def test_a_grid_search_refuses_a_continuous_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="grid search takes grid and choice"):
        load_sweep(
            write_sweep(tmp_path, 'search = "grid"\n[space]\n"nodes.classifier.eta" = { uniform = [0.01, 0.1] }')
        )


# -- with Ray ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_sweep(ray_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """Four trials, two at once: two LTD steps, each also with a classifier that disagrees with its evaluator
    on the number of classes (that graph refuses to start: the trial raises)."""
    from nodes.sweep.run import run_sweep

    folder = tmp_path_factory.mktemp("small")
    body = 'scheduler = "fifo"\n[space]\n"nodes.classifier.classes" = { grid = [10, 11] }\n'
    body += '"nodes.stdp.layers[0].a_minus" = { grid = [-0.005, -0.01] }\n'
    return folder, run_sweep(write_sweep(folder, body), folder / "out")


@pytest.mark.ray
def test_a_small_sweep_finishes_and_its_table_matches_the_trials_results_files(small_sweep: tuple[Path, Any]) -> None:
    folder, outcome = small_sweep
    rows = {r["trial_id"]: r for r in table(folder / "out")}
    done = [r for r in rows.values() if r["status"] == "done"]
    assert len(done) == 2
    for row in done:
        results = json.loads(Path(row["results_file"]).read_text())
        assert float(row["validation_accuracy"]) == pytest.approx(results["test_accuracy"])
        assert float(row["train_accuracy"]) == pytest.approx(results["train_accuracy"])
        assert float(row["events_per_s"]) == pytest.approx(results["events_per_s"])
        assert results["sweep_params"]["nodes.stdp.layers[0].a_minus"] == float(row["nodes.stdp.layers[0].a_minus"])
        assert results["samples"]["test"] == 20  # the validation digits only: no test split was read
    assert outcome.best.trial_id in rows
    assert outcome.best.metric == max(float(r["validation_accuracy"]) for r in done)
    best = tomllib.loads((folder / "out" / "best.toml").read_text())
    assert best["nodes"]["stdp"]["layers"][0]["a_minus"] == outcome.best.params["nodes.stdp.layers[0].a_minus"]
    # the test figure of the best: once, on the base graph's own protocol (its test split)
    assert outcome.test["results"]["phases"][1]["split"] == "test"
    assert outcome.test["test_accuracy"] == outcome.test["results"]["test_accuracy"]
    assert (folder / "out" / "plots" / "learning-curves.png").stat().st_size > 0


@pytest.mark.ray
def test_a_trial_that_raises_is_recorded_and_the_others_finish(small_sweep: tuple[Path, Any]) -> None:
    folder, _ = small_sweep
    rows = table(folder / "out")
    errors = [r for r in rows if r["status"] == "error"]
    assert len(errors) == 2
    assert all(r["nodes.classifier.classes"] == "11" for r in errors)
    assert all("11" in r["error"] for r in errors)
    assert sum(r["status"] == "done" for r in rows) == 2


@pytest.mark.ray
def test_asha_stops_a_deliberately_bad_configuration_early(ray_cluster: str, tmp_path: Path) -> None:
    from nodes.sweep.run import run_sweep

    # fc thresholds out of reach: no feature spikes, no decisions with an answer, accuracy 0 from the start
    body = "final_test = false\n[asha]\ngrace = 2\nreduction = 2\n[space]\n"
    body += '"nodes.stdp.layers[4].th_learn" = { grid = [60.0, 1e9] }\n'
    outcome = run_sweep(write_sweep(tmp_path, body), tmp_path / "out", max_concurrent=1)
    by_th = {r.params["nodes.stdp.layers[4].th_learn"]: r for r in outcome.rows}
    assert by_th[60.0].status == "done"
    assert by_th[1e9].status == "stopped early"
    # stopped on its curve: it never reported the validation figure of a trial that reaches its end
    assert "validation_accuracy" not in by_th[1e9].figures
    assert by_th[60.0].metric is not None


@pytest.mark.ray
def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(ray_cluster: str, tmp_path: Path) -> None:
    from nodes.sweep.run import run_sweep

    body = "final_test = false\n[space]\n" + '"nodes.classifier.eta" = { grid = [0.01, 0.02] }\n'
    path = write_sweep(tmp_path, body)
    out = tmp_path / "out"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pipeline.cli", "sweep", str(path), "--out", str(out), "--max-concurrent", "1"]
    proc = subprocess.Popen([*cmd, "--address", ray_cluster], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not list((out / "trials").glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*.json")}
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=60)[0].decode()
    assert finished, text
    assert proc.returncode == 130, text
    assert "--resume" in text
    outcome = run_sweep(None, out, resume=True)
    assert [r.status for r in outcome.rows] == ["done"] * 2
    after = {p.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*.json")}
    assert len(after) == 2
    assert all(after[name] == mtime for name, mtime in finished.items())  # not run again


# -- the live page -----------------------------------------------------------------------------------------------
def wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], timeout_s: float = 120) -> Any:
    """``check()`` once it is truthy; fails naming ``what`` on timeout or when the sweep's process ends."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, ValueError):
            if got := check():
                return got
        assert proc.poll() is None, f"the sweep ended (exit code {proc.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def sweep_status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweep", timeout=5) as r:
        return dict(json.loads(r.read()))


@pytest.mark.ray
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_sweep_page_shows_each_trial_while_it_learns_and_then_the_written_table(
    ray_cluster: str, browser: Any, tmp_path: Path
) -> None:
    body = "final_test = false\n[space]\n" + '"nodes.classifier.eta" = { grid = [0.01, 0.02] }\n'
    longer = [VALIDATION[0] | {"passes": 5}, VALIDATION[1]]  # trials of seconds: long enough to watch one run
    path = write_sweep(tmp_path, body, fixed={"nodes.digits.phases": longer})
    out, port = tmp_path / "out", free_port()
    cmd = [sys.executable, "-m", "pipeline.cli", "sweep", str(path), "--out", str(out), "--max-concurrent", "1"]
    cmd += ["--address", ray_cluster, "--dashboard", str(port)]
    with (tmp_path / "sweep.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for("the page's server", lambda: sweep_status(port), proc)
        errors: list[str] = []
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{port}/")
        cells = "#trials tbody tr td:nth-child(4)"  # trial, eta, seed, status
        wait_for("a trial running on the page", lambda: "running" in page.locator(cells).all_inner_texts(), proc)
        wait_for("a learning curve drawn while it runs", lambda: curve_pixels(page) > 0, proc)
        assert any(t["curve"] and t["status"] == "running" for t in sweep_status(port)["trials"].values())
        wait_for("the end of the sweep on the page", lambda: page.inner_text("#status") == "sweep ended", proc)
        rows = {r["trial_id"]: r for r in table(out)}
        final = sweep_status(port)
        assert set(final["trials"]) == set(rows)
        for trial_id, row in rows.items():
            shown = final["trials"][trial_id]
            assert shown["status"] == row["status"] == "done"
            assert shown["figures"]["validation_accuracy"] == pytest.approx(float(row["validation_accuracy"]))
            assert shown["params"]["nodes.classifier.eta"] == float(row["nodes.classifier.eta"])
            assert shown["curve"]
        page_rows = page.locator("#trials tbody tr")
        assert sorted(page_rows.evaluate_all("rows => rows.map(r => r.dataset.trial)")) == sorted(rows)
        assert page.locator(cells).all_inner_texts() == ["done", "done"]
        best = max(rows.values(), key=lambda r: float(r["validation_accuracy"]))
        assert final["best"]["trial_id"] == best["trial_id"]
        assert errors == []
        if shot := os.environ.get("SPIKESTREAM_SWEEP_SCREENSHOT"):  # (docs/sweep-dashboard.png is made so)
            page.set_viewport_size({"width": 1200, "height": 760})
            page.wait_for_timeout(1500)
            page.screenshot(path=shot, full_page=True)
        proc.send_signal(signal.SIGINT)  # the page stays up after the sweep until Ctrl-C
        assert proc.wait(timeout=30) == 0, (tmp_path / "sweep.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def curve_pixels(page: Any) -> int:
    """Pixels of the learning-curve canvas that differ from its background."""
    return int(
        page.evaluate(
            """() => {
                const c = document.getElementById('curves');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] !== 17 || d[i + 1] !== 17 || d[i + 2] !== 17) n++;
                return n;
            }"""
        )
    )
