"""Throughput of a DECOLLE layer on one core, paired with Thiele's STDP network on the same N-MNIST samples.

Both read their networks from the configs: the DECOLLE layer of configs/nmnist-decolle.toml, fed the
samples encoded as that graph's encoder does (17x17, polarities merged, 1 ms refractory), one labelled
segment per sample; and configs/nmnist.toml's stdp network, learning on, fed the same samples' raw 34x34
events. Cases, each on a fresh network:

* ``decolle learn``: the layer learning (every segment a training segment);
* ``decolle frozen``: the same layer with learning off (the forward pass only);
* ``thiele learn``: the STDP network, learning on.

Figures are input events per second (what each network takes in: encoded events for DECOLLE, raw ones for
STDP) and samples per second, the fastest of ``--repeat`` runs; the cases of one repeat run back to back,
so their ratios are paired on the same minutes of a shared VM.

    python benchmarks/bench_decolle.py [--samples 100] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from nodes.decolle.network import DecolleNetwork
from nodes.decolle.node import DecolleConfig
from nodes.encoder.events import EventTransform, TransformParams
from nodes.stdp import Network
from nodes.stdp.node import StdpConfig
from pipeline.config import build_params
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE
from recordings import NMnistDataset

REPO = Path(__file__).resolve().parent.parent


def node_table(config: str, node: str) -> dict[str, Any]:
    """A node's table of a config, without the runtime keys."""
    with (REPO / "configs" / config).open("rb") as f:
        table = tomllib.load(f)["nodes"][node]
    return {k: v for k, v in table.items() if k not in ("type", "max_age_ms")}


def samples(n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The raw events of the first ``n`` Train samples, and their labels."""
    root = Path(os.environ.get("SPIKESTREAM_DATA", REPO.parent / "shared" / "recordings")) / "nmnist"
    ds = NMnistDataset(root, split="Train")
    return [ds.load(i) for i in range(n)], np.asarray(ds.labels[:n], np.int64)


def decolle_stream(raw: list[np.ndarray], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples as configs/nmnist-decolle.toml's encoder makes them, end to end on one time line, and
    one training label record at the start of each."""
    enc = node_table("nmnist-decolle.toml", "encoder")
    side = enc["output"][1]
    params = TransformParams(
        in_width=34, in_height=34, out_width=side, out_height=side, channels=1, refractory_us=enc["refractory_us"]
    )
    parts, recs, t0 = [], np.zeros(len(raw), LABEL_DTYPE), 0
    for i, events in enumerate(raw):
        ev = EventTransform(params)(events)  # a fresh filter per sample: each one's times start again at 0
        spikes = np.zeros(len(ev), SPIKE_DTYPE)
        spikes["t"] = ev["t"] - ev["t"][0] + t0
        spikes["c"] = ev["y"].astype(np.int64) * side + ev["x"]
        recs[i] = (t0, int(labels[i]), 1)
        parts.append(spikes)
        t0 = int(spikes["t"][-1]) + 1
    return np.concatenate(parts), recs


def run_decolle(spikes: np.ndarray, labels: np.ndarray, *, learning: bool, batch: int) -> float:
    """Seconds configs/nmnist-decolle.toml's layer takes for the stream."""
    config = build_params(DecolleConfig, node_table("nmnist-decolle.toml", "decolle"), "decolle")
    net = DecolleNetwork(config.params())
    if not learning:
        net.freeze()
    t0 = time.perf_counter()
    net.add_labels(labels)
    for start in range(0, len(spikes), batch):
        net.process(spikes[start : start + batch])
    net.flush()
    return time.perf_counter() - t0


def run_thiele(raw: list[np.ndarray], batch: int) -> float:
    """Seconds configs/nmnist.toml's network takes for the raw events, learning on."""
    config = build_params(StdpConfig, node_table("nmnist.toml", "stdp"), "stdp")
    net = Network(config.input, config.layers, seed=config.seed)
    parts, t0 = [], 0
    for events in raw:  # end to end on one time line, as the replay source plays them
        part = np.zeros(len(events), SPIKE_DTYPE)
        part["x"], part["y"], part["c"] = events["x"], events["y"], events["p"]
        part["t"] = events["t"] - events["t"][0] + t0
        t0 = int(part["t"][-1]) + 1
        parts.append(part)
    spikes = np.concatenate(parts)
    began = time.perf_counter()
    for start in range(0, len(spikes), batch):
        net.process(spikes[start : start + batch])
    return time.perf_counter() - began


def main() -> None:
    """Measure and print (and optionally save) every case."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    raw, labels = samples(args.samples)
    spikes, recs = decolle_stream(raw, labels)
    batch = 10_000
    # compile (or load the numba cache) outside the timing
    run_decolle(spikes[:500], recs[:1], learning=True, batch=batch)
    run_thiele(raw[:1], batch)
    cases: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        cases.setdefault("decolle learn", []).append(run_decolle(spikes, recs, learning=True, batch=batch))
        cases.setdefault("decolle frozen", []).append(run_decolle(spikes, recs, learning=False, batch=batch))
        cases.setdefault("thiele learn", []).append(run_thiele(raw, batch))
    n_in = {"decolle learn": len(spikes), "decolle frozen": len(spikes), "thiele learn": sum(len(r) for r in raw)}
    out = {
        "samples": args.samples,
        "load_average": os.getloadavg(),
        "cases": {
            name: {"seconds": s, "events_per_s": n_in[name] / min(s), "samples_per_s": args.samples / min(s)}
            for name, s in cases.items()
        },
    }
    for name, c in out["cases"].items():
        print(f"{name:16s} {c['events_per_s']:12,.0f} input events/s {c['samples_per_s']:8,.1f} samples/s")
    print(f"load average after: {out['load_average']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
