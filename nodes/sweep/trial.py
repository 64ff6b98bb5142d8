"""One trial of a sweep: the graph run in process in a Ray worker, its learning curve reported to Tune
while it learns, its results at the end.

The trial's graph runs with transport inproc, no state folder and no periodic log, in the worker's thread.
Every evaluate node of the process calls the trial back with each new point of its prequential curve
(``nodes.evaluation.node.curve_listeners``): that is what an early-stopping scheduler ranks trials on.
The whole results document is written to ``trials/<trial id>.json`` in the sweep's folder (a cluster needs
that folder on a shared file system; the figures in the table come through Tune's own reports either way).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from nodes.evaluation import node as evaluation
from pipeline.cli import write_results
from pipeline.config import parse_graph
from pipeline.runner import run_graph

from .spec import Sweep, load_sweep

#: Config keys of a trial that are not ``--set`` keys of the graph.
SWEEP_FILE, SEED, OUT = "__sweep_file", "seed", "__out"


def run_config(sweep: Sweep, params: dict[str, Any], *, seed: int | None, fixed: bool = True) -> dict[str, Any]:
    """Run the graph of one trial here and return its results document."""
    raw = sweep.trial_raw(params, seed=seed, fixed=fixed) | {"transport": "inproc", "log_every_s": 0}
    graph = parse_graph(raw, f"{sweep.base_path} (sweep {sweep.name})")
    graph = dataclasses.replace(graph, state_dir=None)  # trials never share, nor leave, learned state
    return run_graph(graph)


def metrics_of(results: dict[str, Any]) -> dict[str, Any]:
    """The figures of a results document that the sweep's table shows."""
    evaluated = [p for p in results.get("phases_evaluated", ()) if p.get("test")]
    return {
        "validation_accuracy": results.get("test_accuracy") if evaluated else None,
        "train_accuracy": results.get("train_accuracy"),
        "window_accuracy": results.get("window_accuracy"),
        "test_accuracy": results.get("test_accuracy"),
        "events_in": results.get("events_in"),
        "events_per_s": results.get("events_per_s"),
        "graph_wall_s": results.get("wall_s"),
        "errors": "; ".join(f"{n}: {e}" for n, e in (results.get("errors") or {}).items()) or None,
    }


def trainable(config: dict[str, Any]) -> None:
    """The Tune function trainable: ``config`` holds the sweep file, the output folder, the seed and one
    value per space key.

    A trial whose results file is already written (Ctrl-C came between that file and Tune's record of the
    trial's end) is not run again on ``--resume``: its stored curve and figures are reported instead."""
    from ray import tune

    sweep = load_sweep(config[SWEEP_FILE])
    params = {k: v for k, v in config.items() if k not in (SWEEP_FILE, SEED, OUT)}
    path = Path(config[OUT]) / "trials" / f"{tune.get_context().get_trial_id()}.json"
    t0 = time.perf_counter()
    last: dict[str, Any] = {}
    curve: list[dict[str, Any]] = []

    def report(_node: str, samples: int, window: float, cumulative: float) -> None:
        last.update(samples=samples, window_accuracy=window, train_accuracy=cumulative)
        curve.append(dict(last))
        tune.report({**last, "final": False, "trial_wall_s": time.perf_counter() - t0})

    results = _finished(path, params, config.get(SEED))
    if results is not None:
        for point in results["sweep_curve"]:
            last.update(point)
            tune.report({**last, "final": False, "trial_wall_s": time.perf_counter() - t0})
    else:
        evaluation.curve_listeners.append(report)
        try:
            results = run_config(sweep, params, seed=config.get(SEED))
        finally:
            evaluation.curve_listeners.remove(report)
    figures = metrics_of(results)
    if figures["errors"]:
        msg = f"the trial's graph failed: {figures['errors']}"
        raise RuntimeError(msg)
    if "sweep_curve" not in results:
        results = results | {"sweep_params": params, "sweep_seed": config.get(SEED), "sweep_curve": curve}
        write_results(str(path), results)
    final = {k: v for k, v in figures.items() if v is not None}
    tune.report({**last, **final, "final": True, "results_file": str(path), "trial_wall_s": time.perf_counter() - t0})


def _finished(path: Path, params: dict[str, Any], seed: int | None) -> dict[str, Any] | None:
    """The results this trial already wrote, when ``path`` holds them for the same parameters and seed."""
    try:
        kept = read_results(path)
    except (FileNotFoundError, ValueError):
        return None
    same = kept.get("sweep_params") == params and kept.get("sweep_seed") == seed and "sweep_curve" in kept
    return kept if same else None


def read_results(path: str | Path) -> dict[str, Any]:
    """A trial's results file."""
    return json.loads(Path(path).read_text())  # type: ignore[no-any-return]
