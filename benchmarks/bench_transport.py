"""Transport benchmark: source -> 3 identity stages -> sink, one process per node over ipc.

Measures events/s through the chain at several batch sizes (the source as fast as the graph accepts),
and the end-to-end latency (batch creation at the source -> processing at the sink) with the source
paced below saturation, where queueing does not dominate.

    python benchmarks/bench_transport.py [--events N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from pipeline.config import parse_graph
from pipeline.runner import run_graph


def chain(transport: str, events: int, batch: int, rate: float = 0.0) -> dict[str, Any]:
    return {
        "name": f"bench-{transport}-{batch}",
        "transport": transport,
        "log_every_s": 0,
        "links": ["source -> a", "a -> b", "b -> c", "c -> sink"],
        "nodes": {
            "source": {"type": "synthetic", "events": events, "batch": batch, "checksum": False, "rate": rate},
            "a": {"type": "identity"},
            "b": {"type": "identity"},
            "c": {"type": "identity"},
            "sink": {"type": "null"},
        },
    }


def measure(transport: str, events: int, batch: int, rate: float = 0.0) -> dict[str, Any]:
    results = run_graph(parse_graph(chain(transport, events, batch, rate), "bench"))
    if results["errors"]:
        msg = f"benchmark graph failed: {results['errors']}"
        raise SystemExit(msg)
    sink = results["nodes"]["sink"]["counters"]
    assert sink["events_in"] == events, (sink["events_in"], events)
    return {
        "transport": transport,
        "batch": batch,
        "events": events,
        "rate_limit": rate,
        "wall_s": results["wall_s"],
        "events_per_s": results["events_per_s"],
        "latency_ms": sink["latency"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    rows = []
    for transport in ("ipc", "inproc"):
        for batch in (1_000, 10_000, 100_000):
            n = args.events if batch >= 10_000 else args.events // 5
            rows.append(measure(transport, n, batch))
    rows.append(measure("ipc", 5_000_000, 1_000, rate=1e6))  # latency at 1 M ev/s, 1k-event batches
    rows.append(measure("ipc", 5_000_000, 10_000, rate=1e6))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {sys.version.split()[0]}")
    print(f"{'transport':<9} {'batch':>7} {'limit ev/s':>10} {'M ev/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        lat = r["latency_ms"]
        print(
            f"{r['transport']:<9} {r['batch']:>7} {r['rate_limit'] or '-':>10} {r['events_per_s'] / 1e6:>8.2f}"
            f" {lat.get('p50_ms', float('nan')):>8.2f} {lat.get('p99_ms', float('nan')):>8.2f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
