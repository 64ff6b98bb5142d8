"""Throughput of the classifiers (input spikes/s) and of the MNIST rate encoder (events/s).

    python benchmarks/bench_classifier.py [--json FILE] [--spikes N] [--images N]

The rate encoder runs on real MNIST test images when ``$SPIKESTREAM_DATA/mnist`` (default
``../shared/recordings/mnist``) exists, otherwise on random sparse images (said in the table).
Compilation is done before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nodes.classifier import (
    DeltaParams,
    DeltaReadout,
    EpropParams,
    EpropReadout,
    LabelAssignmentReadout,
    ReadoutParams,
    SupervisedClassifier,
    SupervisedParams,
)
from nodes.classifier.labelled import LabelledStream
from nodes.sources.synthesis.rate import RateEncoderParams, images_to_stream
from pipeline.config import data_root
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE
from recordings.datasets.mnist import load_mnist

REPO = Path(__file__).resolve().parent.parent


def make_stream(
    n: int, n_inputs: int, n_classes: int, per_segment: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    spikes = np.zeros(n, dtype=SPIKE_DTYPE)
    spikes["t"] = np.arange(n, dtype=np.int64) * 10
    spikes["c"] = rng.integers(0, n_inputs, n)
    starts = np.arange(0, n, per_segment)
    labels = np.zeros(len(starts), dtype=LABEL_DTYPE)
    labels["t"] = starts * 10
    labels["label"] = rng.integers(0, n_classes, len(starts))
    labels["train"] = 1
    return spikes, labels


def time_classifier(
    make: Callable[[], LabelledStream], spikes: np.ndarray, labels: np.ndarray, batch: int
) -> tuple[float, int]:
    warm = make()
    warm.add_labels(labels[:2])
    warm.process(spikes[:100])
    clf = make()
    clf.add_labels(labels)
    n_out = 0
    start = time.perf_counter()
    for i in range(0, len(spikes), batch):
        n_out += len(clf.process(spikes[i : i + batch]))
    n_out += len(clf.flush())
    return time.perf_counter() - start, n_out


def time_encoder(n_images: int) -> tuple[float, int, str, np.ndarray]:
    root = data_root(REPO) / "mnist"
    if root.is_dir():
        images, labels = load_mnist(root, "test")
        images, labels, source = images[:n_images], labels[:n_images], "MNIST test"
    else:
        rng = np.random.default_rng(0)
        images = (rng.random((n_images, 28, 28)) < 0.19).astype(np.uint8) * 255
        labels, source = np.zeros(n_images, np.uint8), "random images"
    images_to_stream(images[:2], labels[:2], seed=0, train=False)  # compile
    start = time.perf_counter()
    events, _ = images_to_stream(images, labels, seed=0, train=False)
    elapsed = time.perf_counter() - start
    counts = np.bincount(events["t"] // RateEncoderParams().duration_us, minlength=len(images))
    return elapsed, len(events), source, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the results to this JSON file")
    ap.add_argument("--spikes", type=int, default=2_000_000, help="input spikes per classifier run")
    ap.add_argument("--images", type=int, default=2000, help="images for the rate encoder")
    args = ap.parse_args()

    rows: list[dict[str, Any]] = []
    long_segments = make_stream(args.spikes, 1024, 10, 2000)
    # the e-prop readout's cost grows with the inputs seen per segment: also as saccade-MNIST's fc sends
    short_segments = make_stream(args.spikes, 1024, 10, 60)
    for name, make, (spikes, labels) in (
        ("supervised (10 classes, 1024 inputs)", lambda: SupervisedClassifier(SupervisedParams()), long_segments),
        (
            "label assignment (10 classes, 1024 inputs)",
            lambda: LabelAssignmentReadout(ReadoutParams()),
            long_segments,
        ),
        ("supervised, 60 spikes per segment", lambda: SupervisedClassifier(SupervisedParams()), short_segments),
        ("delta, 60 spikes per segment", lambda: DeltaReadout(DeltaParams()), short_segments),
        ("eprop, 60 spikes per segment", lambda: EpropReadout(EpropParams()), short_segments),
        ("eprop, 2000 spikes per segment", lambda: EpropReadout(EpropParams()), long_segments),
    ):
        for batch in (1000, 100_000):
            elapsed, n_out = time_classifier(make, spikes, labels, batch)
            rows.append(
                {
                    "what": name,
                    "batch": batch,
                    "items": len(spikes),
                    "unit": "input spikes/s",
                    "seconds": elapsed,
                    "rate": len(spikes) / elapsed,
                    "outputs": n_out,
                }
            )
    elapsed, n_events, source, counts = time_encoder(args.images)
    rows.append(
        {
            "what": f"rate encoder ({source}, {args.images} images)",
            "batch": args.images,
            "items": n_events,
            "unit": "events/s",
            "seconds": elapsed,
            "rate": n_events / elapsed,
        }
    )
    per_image: dict[str, Any] = {
        "mean": float(counts.mean()),
        "percentiles": dict(
            zip(
                ("min", "p5", "p50", "p95", "max"),
                np.percentile(counts, [0, 5, 50, 95, 100]).tolist(),
                strict=True,
            )
        ),
    }

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    print(f"{'what':<48} {'batch':>8} {'items':>10} {'seconds':>8} {'rate':>14}")
    for r in rows:
        line = f"{r['what']:<48} {r['batch']:>8} {r['items']:>10} {r['seconds']:>8.3f}"
        print(f"{line} {r['rate']:>10.3g} {r['unit']}")
    pct = per_image["percentiles"]
    print(
        f"events per image: mean {per_image['mean']:.0f}, min {pct['min']:.0f}, 5% {pct['p5']:.0f}, "
        f"median {pct['p50']:.0f}, 95% {pct['p95']:.0f}, max {pct['max']:.0f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "rows": rows,
                    "events_per_image": per_image,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
