"""The ``spikestream`` command line.

Core commands live here (``run``, ``node``, ``nodes``); stage packages add theirs (``info``, ``convert``,
``demo`` ...) through the ``spikestream.commands`` entry points, each a ``register(subparsers)`` function.
Every error a user can cause prints one line and exits non-zero; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .checkpoint import check_state_dir
from .config import GraphConfig, load_graph
from .errors import SpikestreamError
from .registry import commands, node_types


def check_results_path(path: str | None) -> None:
    """Refuse a results path that cannot be written before a run starts, not after it has finished."""
    if not path:
        return
    p = Path(path)
    if p.is_dir():
        msg = f"--results {path}: is a folder; give a file name, e.g. {p / 'results.json'}"
        raise SpikestreamError(msg)
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        msg = f"--results {path}: cannot write in {folder}"
        raise SpikestreamError(msg)


def write_results(path: str | None, results: dict[str, Any]) -> None:
    """Write the results document as JSON, atomically (a crash leaves the old file or the new, never half)."""
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(results, indent=2, default=_jsonable) + "\n")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"--results {path}: cannot write ({exc.strerror})"
        raise SpikestreamError(msg) from None


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    msg = f"not JSON serialisable: {type(value).__name__}"
    raise TypeError(msg)


def print_summary(results: dict[str, Any]) -> None:
    """Print the run's figures: the graph's rate, each node's counters and warnings, the accuracies."""
    print(
        f"{results['graph']}: {results['events_in']:,} events in {results['wall_s']:.2f} s "
        f"({results['events_per_s'] / 1e6:.2f} M events/s, transport {results['transport']})"
    )
    for name, report in results["nodes"].items():
        c = report.get("counters", {})
        if not c:
            print(f"  {name}: {report.get('error')}")
            continue
        lat = c.get("latency") or {}
        # shed on purpose: by a live source that the graph held up, or by a node's max_age_ms
        shed = c.get("shed", 0) + int((report.get("results") or {}).get("events_dropped", 0))
        print(
            f"  {name:<12} in {c['events_in']:>12,} ev  out {c['events_out']:>12,} ev  gaps {c['gaps']}"
            f"  drops {c['drops']}  malformed {c['malformed']}  errors {c['errors']}"
            + (f"  shed {shed:,}" if shed else "")
            + (f"  latency p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms" if lat else "")
        )
        for line in (report.get("results") or {}).get("summary", ()):
            print(f"  {name}: {line}")
        for warning in (report.get("results") or {}).get("warnings", ()):
            print(f"  {name}: warning: {warning}")
    for key in ("train_accuracy", "test_accuracy"):
        if results.get(key) is not None:
            print(f"  {key}: {results[key]:.4f}")
    if results.get("interrupted"):
        print(
            f"  interrupted: {', '.join(results['interrupted'])} stopped before the end of the stream; the figures "
            "cover the part before it (with --state DIR a new run resumes from the last checkpoint)"
        )


#: Exit status of a command: done (a run that ended, or was stopped by SIGTERM, a service's normal stop),
#: an error, a bad command line, interrupted by Ctrl-C (128 + SIGINT, as shells expect). In docs/graphs.md.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _finish(results: dict[str, Any], args: argparse.Namespace) -> int:
    write_results(args.results, results)
    if not args.quiet:
        print_summary(results)
        if args.results:
            print(f"results written to {args.results}")
    for name, why in results["errors"].items():
        print(f"spikestream: error in node {name}: {why}", file=sys.stderr)
    if results["errors"]:
        return EXIT_ERROR
    # Ctrl-C, as shells expect; SIGTERM is how a service manager stops a service: a normal end
    return EXIT_INTERRUPTED if results.get("stopped_by") == "SIGINT" else EXIT_OK


def _check_paths(graph: GraphConfig, args: argparse.Namespace) -> None:
    """Refuse a results file or a state folder that cannot be written, before the run starts."""
    check_results_path(args.results)
    if args.state is not None:
        check_state_dir(args.state, "--state")
    elif graph.state_dir is not None:
        check_state_dir(graph.state_dir, f"{graph.source}: state_dir")


def with_dashboard(graph: GraphConfig, address: str | None) -> GraphConfig:
    """``graph`` with a live dashboard on ``address`` (``[HOST:]PORT``) tapping every node (``--dashboard``),
    attached by the stage package that provides it; unchanged without an address. The dashboard logs where
    to open it when it starts (with its token when served beyond loopback)."""
    if address is None:
        return graph
    from .registry import graph_transform

    attached: GraphConfig = graph_transform("dashboard")(graph, address)
    return attached


def cmd_run(args: argparse.Namespace) -> int:
    """``spikestream run``: run a whole graph."""
    from .runner import run_graph

    graph = with_dashboard(load_graph(args.config, args.set), args.dashboard)
    _check_paths(graph, args)
    return _finish(run_graph(graph, state_dir=args.state), args)


def cmd_node(args: argparse.Namespace) -> int:
    """``spikestream node``: run one node of a graph, its peers running elsewhere."""
    from .runner import run_single_node

    graph = load_graph(args.config, args.set)
    _check_paths(graph, args)
    return _finish(run_single_node(graph, args.name, state_dir=args.state), args)


def cmd_nodes(_args: argparse.Namespace) -> int:
    """``spikestream nodes``: list the registered node types and the classes they load."""
    for name, target in sorted(node_types().items()):
        print(f"{name:<18} {target}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """``spikestream keys``: write one CURVE key pair per name."""
    from .security import write_keypair

    for name in args.names:
        pub, sec = write_keypair(name, args.dir)
        print(f"{name}: public key {pub} (give to peers), secret key {sec} (keep, mode 0600)")
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    """``spikestream service``: print a systemd unit for a graph or one of its nodes."""
    from .service import systemd_unit

    unit = systemd_unit(args.config, node=args.node, user=args.user)
    if not args.print:
        print("spikestream: use --print to write the unit to stdout", file=sys.stderr)
        return 2
    print(unit, end="")
    return 0


def _graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. nodes.source.events=1000 (repeatable)",
    )
    p.add_argument("--results", metavar="FILE", help="write the results (counters, accuracies) as JSON")
    p.add_argument("--state", metavar="DIR", help="checkpoint folder (overrides the config's state_dir)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The command line parser, with the built-in commands and those that stages register."""
    parser = argparse.ArgumentParser(
        prog="spikestream",
        description="Event cameras that learn online: run graphs of sources, encoder, STDP network, classifier "
        "and sinks connected by ZeroMQ. Start with 'spikestream demo'.",
    )
    parser.add_argument("--version", action="version", version=f"spikestream {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a graph described in a TOML file")
    p.add_argument("config", help="graph file (TOML)")
    _graph_args(p)
    p.add_argument(
        "--dashboard",
        nargs="?",
        const="127.0.0.1:8050",
        metavar="[HOST:]PORT",
        help="serve a live dashboard of the run (default 127.0.0.1:8050; another host needs the logged token to teach)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("node", help="run one node of a graph alone (spread a pipeline over hosts)")
    p.add_argument("name", help="the node's name in the graph")
    p.add_argument("--config", required=True, help="graph file (TOML)")
    _graph_args(p)
    p.set_defaults(func=cmd_node)

    p = sub.add_parser("nodes", help="list the registered node types")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser("keys", help="create CURVE key pairs for authenticated, encrypted tcp links")
    p.add_argument("names", nargs="+", help="one key pair per name, e.g. camera learner")
    p.add_argument("--dir", default="keys", help="folder for the key files (default: keys)")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("service", help="print a systemd unit that runs a graph (or one node) as a service")
    p.add_argument("config", help="graph file (TOML)")
    p.add_argument("--print", action="store_true", help="write the unit to stdout (required: nothing is installed)")
    p.add_argument("--node", help="run only this node of the graph")
    p.add_argument(
        "--user",
        default="spikestream",
        help="user the service runs as (default spikestream: made by systemd when no such account exists)",
    )
    p.set_defaults(func=cmd_service)

    for name, ep in sorted(commands().items()):
        try:
            ep.load()(sub)
        except ImportError as exc:  # a broken optional stage must not take the whole CLI down
            logging.getLogger("spikestream").debug("command %s unavailable: %s", name, exc)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0, 1 for a ``SpikestreamError`` (said on stderr), 2 for
    a bad command line, 130 for a run that was interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except SpikestreamError as exc:
        print(f"spikestream: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spikestream: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`spikestream info ... | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not complain again
        return 0


if __name__ == "__main__":
    sys.exit(main())
