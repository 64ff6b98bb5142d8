"""Throughput of the SDNN node on one core, paired with Thiele's MNIST network on the same input events.

Both read their networks from the configs (configs/sdnn-mnist.toml, configs/mnist.toml) and run on the
same stream: the first ``--images`` MNIST training digits latency coded (one spike per pixel, linear,
configs/sdnn-mnist.toml's source), fed in the source's batches. Cases, each on a fresh network:

* ``sdnn learn conv 1`` / ``sdnn learn conv 2`` / ``sdnn features``: the SDNN node while its first layer
  learns, while its second learns (the first done), and with learning done (the full wave + features);
* ``thiele learn``: configs/mnist.toml's stdp network, learning on, on the same latency-coded events.

Figures are input events per second and images per second, the fastest of ``--repeat`` runs (the cases
of one repeat run back to back, so their ratios are paired on the same minutes of a shared VM).

    python benchmarks/bench_sdnn.py [--images 2000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from nodes.sdnn.node import SdnnConfig, SdnnNode
from nodes.sources.mnist import MnistConfig
from nodes.sources.synthesis.latency import latency_stream
from nodes.stdp import Network
from nodes.stdp.node import StdpConfig
from pipeline.config import build_params
from pipeline.events import SPIKE_DTYPE
from pipeline.message import events_message, labels_message
from pipeline.node import NodeContext
from recordings.datasets.mnist import load_mnist

REPO = Path(__file__).resolve().parent.parent
RUNTIME = ("type",)


def node_table(config: str, node: str) -> dict[str, Any]:
    """A node's table of a config, without the runtime keys."""
    with (REPO / "configs" / config).open("rb") as f:
        table = tomllib.load(f)["nodes"][node]
    return {k: v for k, v in table.items() if k not in RUNTIME}


def stream(images: int) -> tuple[np.ndarray, np.ndarray]:
    """Latency-coded events and label records of the first ``images`` training digits."""
    data = Path(os.environ.get("SPIKESTREAM_DATA", REPO.parent / "shared" / "recordings")) / "mnist"
    x, y = load_mnist(data, "train")
    src = build_params(MnistConfig, node_table("sdnn-mnist.toml", "source") | {"phases": []}, "source")
    return latency_stream(x[:images], y[:images].astype(np.int64), train=True, params=src.latency_params())


def sdnn_node(learnt: list[int] | None) -> SdnnNode:
    """configs/sdnn-mnist.toml's node; ``learnt``: images each conv layer has already learnt from."""
    config = build_params(SdnnConfig, node_table("sdnn-mnist.toml", "sdnn"), "sdnn")
    node = SdnnNode("sdnn", config, NodeContext("sdnn", "bench"))
    if learnt is not None:
        node.net.learnt[:] = learnt
    return node


def run_sdnn(node: SdnnNode, events: np.ndarray, labels: np.ndarray, batch: int) -> float:
    """Seconds the node takes for the stream (labels, then events in batches, then flush)."""

    async def go() -> None:
        await node.process(labels_message(labels))
        for start in range(0, len(events), batch):
            await node.process(events_message(events[start : start + batch], 28, 28))
        await node.flush()

    t0 = time.perf_counter()
    asyncio.run(go())
    return time.perf_counter() - t0


def run_thiele(events: np.ndarray, batch: int) -> float:
    """Seconds configs/mnist.toml's network takes for the stream, learning on."""
    table = node_table("mnist.toml", "stdp")
    config = build_params(StdpConfig, table, "stdp")
    net = Network(config.input, config.layers, seed=config.seed)
    spikes = np.zeros(len(events), SPIKE_DTYPE)
    spikes["t"], spikes["x"], spikes["y"] = events["t"], events["x"], events["y"]
    t0 = time.perf_counter()
    for start in range(0, len(spikes), batch):
        net.process(spikes[start : start + batch])
    return time.perf_counter() - t0


def main() -> None:
    """Measure and print (and optionally save) every case."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    events, labels = stream(args.images)
    n = args.images
    layers = sdnn_node(None).net.convs
    batch = 10_000
    # compile (or load the numba cache) outside the timing
    run_sdnn(sdnn_node(None), events[:500], labels[:3], batch)
    run_sdnn(sdnn_node([layers[0].images, 0]), events[:500], labels[:3], batch)
    run_sdnn(sdnn_node([c.images for c in layers]), events[:500], labels[:3], batch)
    run_thiele(events[:500], batch)
    cases: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for name, learnt in (
            ("sdnn learn conv 1", [0, 0]),
            ("sdnn learn conv 2", [layers[0].images, 0]),
            ("sdnn features", [c.images for c in layers]),
        ):
            cases.setdefault(name, []).append(run_sdnn(sdnn_node(learnt), events, labels, batch))
        cases.setdefault("thiele learn", []).append(run_thiele(events, batch))
    out = {
        "images": n,
        "events": len(events),
        "cases": {
            name: {"seconds": s, "events_per_s": len(events) / min(s), "images_per_s": n / min(s)}
            for name, s in cases.items()
        },
    }
    for name, c in out["cases"].items():
        print(f"{name:20s} {c['events_per_s']:12,.0f} input events/s {c['images_per_s']:8,.0f} images/s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
