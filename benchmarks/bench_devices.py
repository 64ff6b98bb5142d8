"""Live-path latency: simulated camera (``rate`` mode, ~1 M events/s) → encoder → sink.

Latency = wall clock when a batch reaches the sink (it has just left the encoder stage) minus the
camera timestamp of its oldest event (rate-mode timestamps are Unix µs of the event's birth), so it
includes the camera's slice wait (up to ``slice_us``), the encoder, and two graph hops. Also reported:
the camera's drops. Run: ``python benchmarks/bench_devices.py [--rate 1e6] [--seconds 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.config import parse_graph
from pipeline.message import EVENTS, Message
from pipeline.node import Node, NodeContext, NoParams
from pipeline.runner import run_graph


class LatencySink(Node):
    """Records, per batch, the wall-clock age of its oldest and newest event (µs)."""

    Config = NoParams

    def __init__(self, name: str, config: NoParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self._oldest: list[int] = []
        self._newest: list[int] = []
        self._events = 0

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == EVENTS and msg.data is not None and msg.count:
            now = time.time_ns() // 1000
            t = msg.data["t"]
            self._oldest.append(now - int(t[0]))
            self._newest.append(now - int(t[-1]))
            self._events += msg.count
        return ()

    @override
    def results(self) -> dict[str, Any]:
        if not self._oldest:
            return {"latency_batches": 0}
        old = np.array(self._oldest[len(self._oldest) // 10 :], dtype=np.float64) / 1000  # skip warm-up
        new = np.array(self._newest[len(self._newest) // 10 :], dtype=np.float64) / 1000
        return {
            "latency_batches": len(self._oldest),
            "latency_events": self._events,
            "oldest_p50_ms": float(np.percentile(old, 50)),
            "oldest_p99_ms": float(np.percentile(old, 99)),
            "newest_p50_ms": float(np.percentile(new, 50)),
            "newest_p99_ms": float(np.percentile(new, 99)),
        }


def run(transport: str, rate: float, seconds: float, slice_us: int) -> dict[str, Any]:
    graph = parse_graph(
        {
            "name": f"live-{transport}",
            "transport": transport,
            "log_every_s": 0,
            "links": ["camera -> encoder", "encoder -> sink"],
            "nodes": {
                "camera": {
                    "type": "devices.simulated:SimulatedCamera",
                    "rate": rate,
                    "width": 346,
                    "height": 260,
                    "duration_s": seconds,
                    "slice_us": slice_us,
                },
                "encoder": {"type": "nodes.encoder.node:EncoderNode", "output": [2, 260, 346]},
                "sink": {"type": "bench_devices:LatencySink"},
            },
        },
        "bench_devices",
    )
    res = run_graph(graph)
    if res["errors"]:
        msg = f"benchmark graph failed: {res['errors']}"
        raise SystemExit(msg)
    sink = res["nodes"]["sink"]["results"]
    return {
        "transport": transport,
        "rate": rate,
        "seconds": seconds,
        "slice_us": slice_us,
        "events_emitted": res["events_emitted"],
        "events_dropped": res["events_dropped"],
        "drop_ratio": res["drop_ratio"],
        "drop_episodes": res["drop_episodes"],
        "camera_max_lag_ms": res["max_lag_ms"],
        "delivered_per_s": sink.get("latency_events", 0) / seconds,
        **{k: v for k, v in sink.items() if k.endswith("_ms")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rate", type=float, default=1e6, help="camera events per second (default 1e6)")
    ap.add_argument("--seconds", type=float, default=5.0, help="stream seconds per run (default 5)")
    ap.add_argument("--slice-us", type=int, default=1000, help="camera slice in µs (default 1000)")
    ap.add_argument("--transports", default="inproc,ipc", help="comma-separated (default inproc,ipc)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args()
    # load the encoder's kernels in this process first: otherwise the inproc run's first batch waits for
    # numba (about a second) and the camera drops that second. The ipc run's node processes load their
    # own copy on their first batch, so its drops include that start-up episode (see drop_episodes).
    from nodes.encoder.events import EventTransform, TransformParams
    from pipeline.events import make_events

    EventTransform(TransformParams(in_width=346, in_height=260, out_width=346, out_height=260))(
        make_events([0, 1], [0, 1], [0, 1], [0, 1])
    )
    rows = [run(t, args.rate, args.seconds, args.slice_us) for t in args.transports.split(",")]
    print(f"simulated camera → encoder → sink, {args.rate:,.0f} ev/s, {args.seconds} s, machine {platform.machine()}")
    print(f"{'transport':<10} {'emitted':>11} {'dropped':>9} {'drop %':>7} {'episodes':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['transport']:<10} {r['events_emitted']:>11,} {r['events_dropped']:>9,} {100 * r['drop_ratio']:>7.2f}"
            f" {r['drop_episodes']:>8} "
            f"{r.get('oldest_p50_ms', float('nan')):>8.2f} {r.get('oldest_p99_ms', float('nan')):>8.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "runs": rows}, f, indent=2)


if __name__ == "__main__":
    main()
