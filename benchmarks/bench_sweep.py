"""Sweep benchmark: two trials at once against one after the other on a local Ray, and Ray's overhead per
trial.

The trials are the demo graph made small (``--train`` digits learn, 50 held-out training digits validate,
the same work in every trial: only the classifier's step differs). Each mode runs ``--repeat`` times,
interleaved, in one Ray started once. Throughput: trials per second of sweep wall time (Ray's start-up
excluded, the sweep's own set-up and table included). Overhead per trial: the sequential sweep's wall time
per trial minus the graph's own wall time (a worker process, imports, numba's cached kernels, the curve
reports); and, inside the trial, the trainable's time around the graph.

    python benchmarks/bench_sweep.py [--train N] [--repeat R] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from nodes.sweep.run import run_sweep
from nodes.sweep.toml_text import toml_document, toml_value
from pipeline.overrides import apply_overrides


def write_sweep(folder: Path, train: int) -> Path:
    raw = tomllib.loads(resources.files("nodes").joinpath("demo.toml").read_text())
    phases = [
        {"split": f"train[:{train}]", "samples": train},
        {"split": f"train[{train}:]", "samples": 50, "features": False, "classifier": False, "seed": 5},
    ]
    raw = apply_overrides(raw, [f"nodes.digits.font_train={train + 50}", "nodes.console.summary_every_s=0.0"], "demo")
    (folder / "graph.toml").write_text(toml_document(raw))
    text = 'base = "graph.toml"\nscheduler = "fifo"\nfinal_test = false\n'
    text += f'[fixed]\n"nodes.digits.phases" = {toml_value(phases)}\n'
    text += '[space]\n"nodes.classifier.eta" = { grid = [0.02, 0.03] }\n'
    (folder / "sweep.toml").write_text(text)
    return folder / "sweep.toml"


def one(sweep: Path, out: Path, concurrent: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    outcome = run_sweep(sweep, out, max_concurrent=concurrent)
    wall = time.perf_counter() - t0
    rows = outcome.rows
    if any(r.status != "done" for r in rows):
        sys.exit(f"a trial did not finish: {[(r.trial_id, r.status, r.error) for r in rows]}")
    graph = [float(json.loads(Path(r.figures["results_file"]).read_text())["wall_s"]) for r in rows]
    inside = [float(r.figures["trial_wall_s"]) for r in rows]
    return {"wall_s": wall, "trials": len(rows), "graph_wall_s": graph, "trial_wall_s": inside}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1000, help="training digits per trial (default 1000)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each mode, interleaved (default 2)")
    ap.add_argument("--json", help="write the figures as JSON")
    args = ap.parse_args()
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - t0
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        sweep = write_sweep(Path(tmp), args.train)
        n = 0
        for _ in range(args.repeat):
            for concurrent in (1, 2):
                n += 1
                runs[concurrent].append(one(sweep, Path(tmp) / f"out{n}", concurrent))
    ray.shutdown()
    seq = [r["wall_s"] for r in runs[1]]
    par = [r["wall_s"] for r in runs[2]]
    graph_seq = [statistics.mean(r["graph_wall_s"]) for r in runs[1]]
    inside_seq = [statistics.mean(r["trial_wall_s"]) for r in runs[1]]
    speedups = [s / p for s, p in zip(seq, par, strict=True)]
    report = {
        "machine": platform.processor() or platform.machine(),
        "train": args.train,
        "ray_init_s": round(ray_start, 2),
        "sequential_wall_s": [round(x, 2) for x in seq],
        "parallel_wall_s": [round(x, 2) for x in par],
        "speedup": [round(x, 3) for x in speedups],
        "graph_wall_s_sequential": [round(x, 2) for x in graph_seq],
        "overhead_per_trial_s": [round(s / 2 - g, 2) for s, g in zip(seq, graph_seq, strict=True)],
        "in_trial_overhead_s": [round(i - g, 3) for i, g in zip(inside_seq, graph_seq, strict=True)],
    }
    print(json.dumps(report, indent=2))
    overhead = statistics.median(report["overhead_per_trial_s"])
    inside = statistics.median(report["in_trial_overhead_s"])
    print(
        f"2 trials in parallel: {statistics.median(speedups):.2f}x the throughput of one after the other "
        f"(median of {len(speedups)}); Ray's overhead per trial {overhead:.1f} s (of which {inside:.2f} s inside "
        f"the trial), Ray start {ray_start:.1f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
