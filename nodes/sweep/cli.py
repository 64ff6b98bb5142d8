"""``spikestream sweep SWEEP.toml``: tune a graph with Ray Tune (the ``sweep`` extra), locally or on a cluster."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli import EXIT_INTERRUPTED
from pipeline.errors import ConfigError
from pipeline.lifecycle import wait_for_ctrl_c


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run or resume a sweep and print its table, best configuration, test figure and files."""
    try:
        import ray  # noqa: F401 - only to say what is missing
    except ImportError:
        msg = "spikestream sweep needs Ray Tune: pip install 'spikestream[sweep]'"
        raise ConfigError(msg) from None
    from nodes.dashboard.attach import parse_address

    from .board import BoardServer, SweepBoard
    from .run import find_sweep
    from .spec import load_sweep

    if args.resume is None and args.sweep is None:
        msg = "give a sweep file, or --resume DIR"
        raise ConfigError(msg)
    out = args.resume or args.out or f"sweep-{load_sweep(args.sweep).name}"
    board, server = None, None
    if args.dashboard is not None:
        sweep = find_sweep(args.sweep, out, resume=args.resume is not None)
        board = SweepBoard(sweep.name, sweep.spec.metric, list(sweep.spec.space))
        server = BoardServer(board, *parse_address(args.dashboard))
        server.start()
        print(f"sweep dashboard: {server.address}", flush=True)
    try:
        code = _run(args, out, board)
        if server is not None and code == 0:  # (a sweep stopped by Ctrl-C ends at once)
            print(f"the page stays at {server.address} until Ctrl-C", flush=True)
            wait_for_ctrl_c()
        return code
    finally:
        if server is not None:
            server.stop()


def _run(args: argparse.Namespace, out: str, board: Any) -> int:
    """Run or resume the sweep, then print what it found."""
    from .report import summary_lines
    from .run import run_sweep

    outcome = run_sweep(
        args.sweep,
        out,
        address=args.address,
        resume=args.resume is not None,
        max_concurrent=args.max_concurrent,
        verbose=args.verbose,
        board=board,
    )
    metric = outcome.metric
    for line in summary_lines(outcome.rows, outcome.keys, metric):
        print(line)
    if outcome.best is not None:
        b = outcome.best
        print(f"best: trial {b.trial_id}, {metric} {b.metric:.4f}, seed {b.seed}: {b.params}")
    if outcome.test is not None:
        acc = outcome.test.get("test_accuracy")
        shown = "-" if acc is None else f"{acc:.4f}"
        print(f"test figure of the best configuration (run once, after selection): test_accuracy {shown}")
    for path in outcome.files:
        print(f"wrote {path}")
    if outcome.interrupted:
        print(f"interrupted: continue with spikestream sweep --resume {out}")
        return EXIT_INTERRUPTED
    return 0


def register(sub: Any) -> None:
    """Add ``spikestream sweep`` to the CLI (entry point of ``spikestream.commands``)."""
    p = sub.add_parser("sweep", help="tune a graph's parameters with Ray Tune (locally or on a Ray cluster)")
    p.add_argument("sweep", nargs="?", help="sweep file (TOML): base graph, metric, seeds, search space")
    p.add_argument("--out", help="folder for the table, plots, best config and Tune's state (default sweep-NAME)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted sweep in DIR")
    p.add_argument("--address", help="an existing Ray cluster (ray start --head prints it), e.g. 10.0.0.1:6379")
    p.add_argument("--max-concurrent", type=int, default=0, help="trials at once (default: as many as Ray fits)")
    p.add_argument(
        "--dashboard",
        nargs="?",
        const="127.0.0.1:8050",
        metavar="[HOST:]PORT",
        help="serve a live page of the trials (default 127.0.0.1:8050); it stays up after the sweep until Ctrl-C",
    )
    p.set_defaults(func=cmd_sweep)
