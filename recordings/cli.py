"""``spikestream info`` and ``spikestream convert``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.config import data_path, where_looked
from pipeline.errors import RecordingError


def _resolve(path: str) -> Path:
    p = data_path(path)
    if not p.exists():
        msg = f"{path}: no such file or folder (looked for {where_looked(path)})"
        raise RecordingError(msg)
    return p


def cmd_info(args: argparse.Namespace) -> int:
    """Print what an event file, a dataset folder or a message log holds (as JSON with ``--json``)."""
    from recordings import info
    from recordings.messages import describe, is_message_log

    path = _resolve(args.path)
    if is_message_log(path):
        log = describe(path)
        if args.json:
            print(json.dumps(log, indent=2))
            return 0
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in log["messages"].items()) or "no messages"
        print(f"{log['path']}: {log['format']}, {kinds}")
        if log["records"]:
            print("  records: " + ", ".join(f"{n:,} {kind}" for kind, n in log["records"].items()))
        if log["controls"]:
            print("  controls: " + ", ".join(f"{n} {cmd}" for cmd, n in log["controls"].items()))
        if log["t_first"] is not None:
            span = (log["t_last"] - log["t_first"]) / 1e6
            print(f"  t {log['t_first']} .. {log['t_last']} µs ({span:.3f} s); sensor {', '.join(log['sizes']) or '-'}")
        if log["truncated_at"] is not None:
            print(f"  cut short: ends inside the message at byte {log['truncated_at']}")
        return 0
    result = info(path)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    size = f"{result['width']}x{result['height']}" if result.get("width") is not None else "unknown size"
    print(f"{result['path']}: {result['format']}, {size}")
    span = (
        "no timestamps"
        if result["t_first"] is None
        else f"t {result['t_first']} .. {result['t_last']} µs ({(result['duration_us'] or 0) / 1e6:.3f} s)"
    )
    if "samples" in result:  # a dataset folder: the times are those of each sample, from its own zero
        span = "per sample " + span
    print(f"  {result['events']:,} events ({result['on']:,} ON, {result['off']:,} OFF), {span}")
    if "samples" in result:
        print(f"  {result['samples']} samples; per split {result['splits']}; per label {result['labels']}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert ``src`` to ``dst`` and print what was written."""
    from recordings import convert

    try:
        result = convert(_resolve(args.src), args.dst)
    except ValueError as exc:
        raise RecordingError(str(exc)) from None
    print(f"{args.dst}: {result['format']}, {result['events']:,} events")
    return 0


def register_info(sub: Any) -> None:
    """Add ``spikestream info`` to the CLI's sub-commands."""
    p = sub.add_parser("info", help="describe an event file, an N-MNIST dataset folder or a message log")
    p.add_argument("path", help="file or folder (relative paths also resolve against SPIKESTREAM_DATA)")
    p.add_argument("--json", action="store_true", help="print JSON (format, events, t_first, t_last, ...)")
    p.set_defaults(func=cmd_info)


def register_convert(sub: Any) -> None:
    """Add ``spikestream convert`` to the CLI's sub-commands."""
    p = sub.add_parser(
        "convert", help="convert an event file; the output format follows DST's suffix; DST must not exist"
    )
    p.add_argument("src", help="input file (any supported format)")
    p.add_argument("dst", help="output file: .aedat4, .bin (N-MNIST), .npy or .aedat3")
    p.set_defaults(func=cmd_convert)
