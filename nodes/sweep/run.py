"""Drive Ray Tune: the search space, the scheduler, the resources per trial, a new experiment or a resumed
one, and then the table, the best configuration and its one test run.

Ray runs locally (one trial per core) unless ``address`` names a cluster (``ray start --head``; the sweep
folder and ``SPIKESTREAM_DATA`` must resolve on every node). Tune saves the experiment's state as it goes
in ``OUT/tune``: a sweep stopped by Ctrl-C goes on with ``resume``, without rerunning finished trials.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cli import write_results
from pipeline.errors import ConfigError

from . import report
from .board import SweepBoard
from .report import DONE, ERROR, STOPPED, UNFINISHED, Row
from .spec import CURVE_METRIC, Sweep, load_sweep
from .trial import OUT, SEED, SWEEP_FILE, metrics_of, run_config, trainable

log = logging.getLogger("spikestream.sweep")

#: Tune's experiment folder inside a sweep's folder, and the file that says which sweep file it runs.
TUNE_DIR, SWEEP_JSON = "tune", "sweep.json"


@dataclass
class SweepOutcome:
    """What a sweep found: its rows (best first), the best row, the test figure of the best configuration
    (None when not run), the files written, and whether Ctrl-C cut it short."""

    rows: list[Row]
    metric: str
    keys: list[str]
    best: Row | None
    test: dict[str, Any] | None
    files: list[Path] = field(default_factory=list)
    interrupted: bool = False


def param_space(sweep: Sweep, out: Path) -> dict[str, Any]:
    """Tune's search space: one entry per space key, the seeds crossed as a grid, and the constants a
    trial needs to find its sweep."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, entry in sweep.spec.space.items():
        kind, values = next(iter(entry.items()))
        if kind == "grid" or (kind == "choice" and sweep.spec.search == "grid"):
            space[key] = tune.grid_search(values)
        elif kind == "choice":
            space[key] = tune.choice(values)
        elif kind == "uniform":
            space[key] = tune.uniform(*values)
        else:
            space[key] = tune.loguniform(*values)
    seeds = list(sweep.spec.seeds)
    space[SEED] = tune.grid_search(seeds) if len(seeds) > 1 else seeds[0]
    return space | {SWEEP_FILE: str(sweep.path.resolve()), OUT: str(out.resolve())}


def _tuner(sweep: Sweep, out: Path, *, resume: bool, max_concurrent: int, verbose: int, callbacks: list[Any]) -> Any:
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    from .scheduler import RecordingAsha

    spec = sweep.spec
    resources: dict[str, float] = {"cpu": spec.cpus_per_trial}
    if spec.memory_mb_per_trial:
        resources["memory"] = spec.memory_mb_per_trial * 2**20
    fn = tune.with_resources(trainable, resources)
    if resume:
        return tune.Tuner.restore(
            str((out / TUNE_DIR).resolve()), fn, resume_unfinished=True, resume_errored=False, restart_errored=False
        )
    if spec.scheduler == "asha":
        a = spec.asha
        scheduler: Any = RecordingAsha(
            out.resolve(),
            time_attr="training_iteration",
            metric=CURVE_METRIC,
            mode="max",
            grace_period=a.grace,
            reduction_factor=a.reduction,
            max_t=a.max_reports,
        )
    else:
        scheduler = FIFOScheduler()  # type: ignore[no-untyped-call]
    return tune.Tuner(
        fn,
        param_space=param_space(sweep, out),
        tune_config=tune.TuneConfig(
            num_samples=spec.samples, scheduler=scheduler, max_concurrent_trials=max_concurrent or None
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(out.resolve()),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            verbose=verbose,
            callbacks=callbacks,
        ),
    )


def find_sweep(sweep_file: str | Path | None, out: str | Path, *, resume: bool) -> Sweep:
    """The sweep to run: ``sweep_file``, or (``resume``) the one whose folder ``out`` is."""
    if resume:
        try:
            sweep_file = json.loads((Path(out) / SWEEP_JSON).read_text())["sweep_file"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            msg = f"--resume {out}: not a sweep folder (no {SWEEP_JSON} there)"
            raise ConfigError(msg) from None
    if sweep_file is None:
        msg = "give a sweep file, or --resume DIR"
        raise ConfigError(msg)
    return load_sweep(sweep_file)


def run_sweep(
    sweep_file: str | Path | None,
    out: str | Path,
    *,
    address: str | None = None,
    resume: bool = False,
    max_concurrent: int = 0,
    verbose: int = 0,
    board: SweepBoard | None = None,
) -> SweepOutcome:
    """Run (or, with ``resume``, continue) the sweep of ``sweep_file`` in folder ``out``; ``board`` (a page's
    state) hears of every trial as it goes (of a resumed sweep: its table at the end)."""
    import ray

    out = Path(out)
    sweep = find_sweep(sweep_file, out, resume=resume)
    if not resume:
        if (out / TUNE_DIR).exists():
            msg = f"{out} already holds a sweep: continue it with --resume {out}, or choose another --out"
            raise ConfigError(msg)
        out.mkdir(parents=True, exist_ok=True)
        (out / SWEEP_JSON).write_text(json.dumps({"sweep_file": str(sweep.path.resolve())}) + "\n")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=verbose > 0, configure_logging=False)
    callbacks = []
    if board is not None:
        from .board_callback import BoardCallback

        callbacks.append(BoardCallback(board))
    tuner = _tuner(sweep, out, resume=resume, max_concurrent=max_concurrent, verbose=verbose, callbacks=callbacks)
    grid = tuner.fit()
    from .scheduler import stopped_trials

    rows = report.sort_rows(rows_of(grid, stopped_trials(out)))
    keys = list(sweep.spec.space)
    metric = sweep.spec.metric
    files = [out / "trials.csv"]
    report.write_table(rows, keys, metric, files[0])
    interrupted = any(r.status == UNFINISHED for r in rows) or len(rows) < trial_count(sweep)
    best = next((r for r in rows if r.status == DONE and r.metric is not None and not math.isnan(r.metric)), None)
    test = None
    if best is not None and not interrupted:
        report.write_best(sweep, best, metric, out / "best.toml")
        files.append(out / "best.toml")
        if sweep.spec.final_test:
            test = final_test(sweep, best, out / "best-test.json")
            files.append(out / "best-test.json")
    try:
        files += report.write_plots(rows, keys, metric, out / "plots")
    except (ImportError, ValueError, OSError) as exc:  # a table without plots is still the answer
        log.warning("sweep: no plots: %s", exc)
    if board is not None:
        board.finish(rows, best, test)
    return SweepOutcome(rows, metric, keys, best, test, files, interrupted)


def rows_of(grid: Any, stopped: set[str]) -> list[Row]:
    """One row per trial of Tune's result grid; ``stopped``: the trials the scheduler stopped."""
    trials = list(getattr(getattr(grid, "_experiment_analysis", None), "trials", ()))
    rows = []
    for n, result in enumerate(grid):
        trial = trials[n] if n < len(trials) else None
        config = dict(result.config or {})
        metrics = dict(result.metrics or {})
        trial_id = str(getattr(trial, "trial_id", None) or metrics.get("trial_id") or Path(result.path).name)
        if result.error is not None:
            state = ERROR
        elif metrics.get("final"):
            state = DONE
        elif trial_id in stopped:
            state = STOPPED
        else:  # running or pending when Ctrl-C stopped the sweep
            state = UNFINISHED
        curve: list[tuple[float, float]] = []
        frame = result.metrics_dataframe
        if frame is not None and "samples" in frame and CURVE_METRIC in frame:
            part = frame[frame["final"] == False][["samples", CURVE_METRIC]].dropna()  # noqa: E712 - a column
            curve = [(float(a), float(b)) for a, b in part.itertuples(index=False)]
        metric_name = _metric_name(config)
        value = metrics.get(metric_name) if state == DONE else None
        rows.append(
            Row(
                trial_id=trial_id,
                status=state,
                seed=config.get(SEED),
                params={k: v for k, v in config.items() if k not in (SWEEP_FILE, SEED, OUT)},
                metric=None if value is None else float(value),
                figures=metrics,
                error=None if result.error is None else f"{type(result.error).__name__}: {result.error}",
                curve=curve,
            )
        )
    return rows


def trial_count(sweep: Sweep) -> int:
    """How many trials the sweep runs: each grid point ``samples`` times, per seed."""
    count = sweep.spec.samples * len(sweep.spec.seeds)
    for entry in sweep.spec.space.values():
        kind, values = next(iter(entry.items()))
        if kind == "grid" or (kind == "choice" and sweep.spec.search == "grid"):
            count *= len(values)
    return count


def _metric_name(config: dict[str, Any]) -> str:
    """The metric of the sweep a trial's config belongs to."""
    return str(load_sweep(config[SWEEP_FILE]).spec.metric) if SWEEP_FILE in config else "validation_accuracy"


def final_test(sweep: Sweep, best: Row, path: Path) -> dict[str, Any]:
    """The best configuration run once on the base graph's own protocol (its test phases), in a Ray
    worker like the trials; kept in ``path``, so a resumed or re-read sweep never runs it twice."""
    import ray

    key = {"params": best.params, "seed": best.seed}
    if path.exists():
        kept: dict[str, Any] = json.loads(path.read_text())
        if kept.get("selected") == key:
            return kept
    task = ray.remote(num_cpus=sweep.spec.cpus_per_trial)(_final_run)
    results: dict[str, Any] = ray.get(task.remote(str(sweep.path.resolve()), best.params, best.seed))
    figures = metrics_of(results)
    del figures["validation_accuracy"]  # this run's evaluation-only phases are the base graph's: its test split
    doc = {"selected": key, "trial_id": best.trial_id, **figures, "results": results}
    write_results(str(path), doc)
    return doc


def _final_run(sweep_file: str, params: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """The final test run (a Ray task)."""
    return run_config(load_sweep(sweep_file), params, seed=seed, fixed=False)
