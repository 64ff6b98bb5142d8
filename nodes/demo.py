"""``spikestream demo``: the whole pipeline on an embedded default, with no camera and no data files.

Saccade digits drawn from a font → encoder → online STDP features → event-based supervised classifier →
evaluation → console. It learns while the digits stream past, then is tested with learning off, and says
honestly whether it learned: the test accuracy is compared with chance (10 %).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.cli import print_summary, write_results
from pipeline.config import parse_graph
from pipeline.errors import ConfigError
from pipeline.lifecycle import wait_for_ctrl_c
from pipeline.overrides import apply_overrides
from pipeline.runner import run_graph

CHANCE = 0.1


def demo_config(train: int, test: int, overrides: list[str]) -> dict[str, Any]:
    """The built-in demo graph with ``train`` and ``test`` digits and the ``--set`` overrides applied."""
    raw = tomllib.loads(resources.files("nodes").joinpath("demo.toml").read_text())
    digits = raw["nodes"]["digits"]
    digits["font_train"] = max(digits["font_train"], train)
    digits["font_test"] = max(digits["font_test"], test)
    digits["phases"][0]["samples"] = train
    digits["phases"][1]["samples"] = test
    return apply_overrides(raw, overrides, "demo.toml (built in)")


#: Marks a state folder as the demo's own, so a re-run may delete it (and nothing else).
STATE_MARK = ".spikestream-demo"


def _fresh_state(folder: Path) -> None:
    """An empty state folder for the demo: one it marked as its own is cleared (a kept state would resume
    the finished stream); anything else is left alone and refused. Checkpoint names do not tell: the
    camera graphs' state folders hold ``stdp.npz`` and ``classifier.npz`` too."""
    if folder.exists():
        if not (folder / STATE_MARK).exists():
            msg = (
                f"{folder} exists and was not made by the demo (it may hold another graph's learned state); "
                "choose another --out, or delete that folder yourself"
            )
            raise ConfigError(msg)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / STATE_MARK).write_text("spikestream demo state: cleared by the next demo run in this folder\n")


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo graph in ``--out``, print its summary and a verdict; 0 when it learned."""
    for flag, value in (("--train", args.train), ("--test", args.test)):
        if value < 1:
            msg = f"{flag} must be >= 1, got {value}"
            raise ConfigError(msg)
    out = Path(args.out)
    graph = parse_graph(demo_config(args.train, args.test, args.set), "demo.toml (built in)")
    _fresh_state(out / "state")
    print(
        f"spikestream demo: {args.train} font digits in saccades teach the network online, then "
        f"{args.test} unseen ones test it with learning off (no camera, no data files needed)."
    )
    url = None
    if args.dashboard is not None:
        from nodes.dashboard.attach import attach_dashboard, dashboard_url

        graph = attach_dashboard(graph, args.dashboard, keep_serving=True)
        url = dashboard_url(graph)
        print(f"dashboard: open {url} to watch it learn (and teach it)")
    t0 = time.perf_counter()
    results = run_graph(graph, state_dir=str(out / "state"))
    results["demo_wall_s"] = round(time.perf_counter() - t0, 1)
    write_results(str(out / "results.json"), results)
    print_summary(results)
    from nodes.plots import write_plots

    state = out / "state" / "stdp.npz"
    plots = write_plots(out / "plots", state=state if state.exists() else None, results=out / "results.json")
    test = results.get("test_accuracy")
    print(f"\nwall time {results['demo_wall_s']} s; results: {out / 'results.json'}")
    print("plots: " + ", ".join(str(p) for p in plots))
    print(f"learned state (checkpoints): {out / 'state'}")
    status = _verdict(results, test)
    if url is not None:
        print(f"dashboard: the last state stays at {url} until Ctrl-C", flush=True)
        wait_for_ctrl_c()
    return status


def _verdict(results: dict[str, Any], test: float | None) -> int:
    if results["errors"]:
        print("the demo had errors: " + json.dumps(results["errors"]))
        return 1
    if test is None:
        print("no test decisions were made: nothing to judge")
        return 1
    if test >= 2 * CHANCE:
        print(f"verdict: it learned: test accuracy {100 * test:.1f} % against {100 * CHANCE:.0f} % chance.")
        return 0
    print(f"verdict: it did NOT learn: test accuracy {100 * test:.1f} % is near chance ({100 * CHANCE:.0f} %).")
    return 1


def register(sub: Any) -> None:
    """Add ``spikestream demo`` to the CLI (entry point of ``spikestream.commands``)."""
    p = sub.add_parser("demo", help="run the whole pipeline on built-in saccade digits (no camera, no data)")
    p.add_argument("--out", default="spikestream-demo", help="folder for results, plots and state")
    p.add_argument("--train", type=int, default=1500, help="training digits (default 1500)")
    p.add_argument("--test", type=int, default=500, help="test digits (default 500)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the demo graph")
    p.add_argument(
        "--dashboard",
        nargs="?",
        const="127.0.0.1:8050",
        metavar="[HOST:]PORT",
        help="watch it learn live in a browser (default 127.0.0.1:8050); waits for Ctrl-C after the run",
    )
    p.set_defaults(func=run_demo)
