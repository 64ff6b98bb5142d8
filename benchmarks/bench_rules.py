"""Throughput of each learning rule on the same network and stream (input events per second, one core).

The MNIST architecture (28x28x1-16C5-P2-32C5-P2-1000) as configs/mnist.toml (Thiele's rule) and
configs/mnist-trace.toml (the trace rule) set it up, read from the files, on the same rate-coded MNIST
training images (``$SPIKESTREAM_DATA/mnist``, the MNIST source's encoder), learning on. The rules
run alternately on fresh networks, ``--repeat`` times each after one warm-up (numba compilation), so
that each pair shares the same minutes of the shared VM; it prints each rule's median events/s and the
median of the paired ratios to Thiele's.

    python benchmarks/bench_rules.py [--samples 50] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from nodes.sources.synthesis.rate import images_to_stream
from nodes.stdp import Network
from pipeline.config import data_root
from pipeline.events import SPIKE_DTYPE
from recordings.datasets.mnist import load_mnist

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"thiele": ROOT / "configs" / "mnist.toml", "trace": ROOT / "configs" / "mnist-trace.toml"}


def network(path: Path) -> Network:
    """A fresh network as the config's ``[nodes.stdp]`` table builds it."""
    table = tomllib.loads(path.read_text())["nodes"]["stdp"]
    return Network.from_config({"input_shape": table["input"], "layers": table["layers"], "seed": table["seed"]})


def mnist_spikes(samples: int) -> np.ndarray:
    """The first ``samples`` training images, rate-coded as the MNIST source codes them (seed 1)."""
    images, labels = load_mnist(data_root(ROOT) / "mnist", "train")
    events, _ = images_to_stream(images[:samples], labels[:samples].astype(np.int64), seed=1, train=True)
    spikes = np.zeros(len(events), SPIKE_DTYPE)
    spikes["t"], spikes["x"], spikes["y"] = events["t"], events["x"], events["y"]
    return spikes


def main() -> None:
    """Run the paired comparison and print (and optionally save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    spikes = mnist_spikes(args.samples)
    for path in CONFIGS.values():  # warm-up: compile
        network(path).process(spikes[:3000])
    rates: dict[str, list[float]] = {rule: [] for rule in CONFIGS}
    outputs: dict[str, int] = {}
    for _ in range(args.repeat):
        for rule, path in CONFIGS.items():
            net = network(path)
            start = time.perf_counter()
            out = net.process(spikes)
            rates[rule].append(len(spikes) / (time.perf_counter() - start))
            outputs[rule] = len(out)
    ratios = [tr / th for tr, th in zip(rates["trace"], rates["thiele"], strict=True)]
    result: dict[str, Any] = {
        "samples": args.samples,
        "input_events": len(spikes),
        "events_per_s": {rule: statistics.median(r) for rule, r in rates.items()},
        "runs": rates,
        "output_spikes": outputs,
        "trace_over_thiele": statistics.median(ratios),
    }
    for rule in CONFIGS:
        print(f"{rule:>7}: {result['events_per_s'][rule] / 1e6:.3f} M input events/s (median of {args.repeat})")
    print(f"trace / thiele, median of paired ratios: {result['trace_over_thiele']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
