"""Screen SDNN variants on held-out *training* digits, fast: no stream, the network called per image.

The layers learn from ``--learn1`` then ``--learn2`` digits of ``train[:50000]`` (seeded order), the
readouts are fitted on the next ``--fit`` digits of ``train[:50000]`` and judged on ``--judge`` digits of
``train[50000:]``: the test split is never read. Frames are the ones the node rebuilds from the linear
latency code (threshold 0.01, normalised to a 50 ms window). Reported: ridge and softmax (as
``sdnn_offline.py``, hyperparameters chosen on the last 10 % of the fit rows) and a one-pass emulation of
the classifier's normalised delta rule (eta 0.3) on the node's raw counts (quantum 0.25) and on its
standardized two-channel counts (quantum 0.1).

    python benchmarks/sdnn_screen.py [--seed 1] [--set '{"c1": {"radius": 5}, "c2": {"radius": 3}}']
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
from sdnn_offline import accuracy, ridge, softmax_fit, standardise

from nodes.sdnn.layers import SdnnConv, SdnnLayer, SdnnPool
from nodes.sdnn.network import DogParams, SdnnNetwork
from nodes.sdnn.standardize import RunningStandardizer
from recordings.datasets.mnist import load_mnist


def latency_frames(images: np.ndarray) -> np.ndarray:
    """What the node's ``frame = "first"`` rebuilds from the source's linear latency code (50 ms, 1 µs)."""
    x = images.astype(np.float64) / 255.0
    tau = 50_000 / (1.0 - (0.01 + 1 / 255))
    return np.where(x > 0.01, np.clip(1.0 - np.floor(tau * (1.0 - x)) / 50_000, 0.0, 1.0), 0.0)


def delta_one_pass(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> float:
    """Test accuracy of the classifier's normalised delta rule (eta 0.3, no bias) after one pass."""
    w = np.zeros((10, x_tr.shape[1]))
    for x, y in zip(x_tr, y_tr, strict=True):
        norm = float(x @ x)
        if norm > 0:
            w += 0.3 * np.outer(np.eye(10)[y] - w @ x, x) / norm
    return float(((x_te @ w.T).argmax(1) == y_te).mean())


def standardized_counts(f: np.ndarray, train: np.ndarray, quantum: float = 0.1) -> np.ndarray:
    """The node's ``standardize`` output, row by row (``train`` rows join the statistics)."""
    z = RunningStandardizer(f.shape[1])
    return np.array([z.counts(x, train=bool(t), quantum=quantum) for x, t in zip(f, train, strict=True)])


def main() -> None:
    """Learn, extract, fit, judge; one JSON line on stdout."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="../shared/recordings/mnist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--learn1", type=int, default=3000)
    ap.add_argument("--learn2", type=int, default=5000)
    ap.add_argument("--fit", type=int, default=5000)
    ap.add_argument("--judge", type=int, default=3000)
    ap.add_argument("--set", default="{}", help='JSON: {"c1": {...}, "c2": {...}, "pool": {...}, "dog": {...}}')
    args = ap.parse_args()
    over: dict[str, dict[str, Any]] = json.loads(args.set)
    images, labels = load_mnist(args.root, "train")
    frames = latency_frames(images)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(50_000)
    judge = 50_000 + rng.permutation(10_000)[: args.judge]
    c1: dict[str, Any] = {"maps": 30, "kernel": 5, "threshold": 15.0, "winners": 5, "radius": 3}
    c2: dict[str, Any] = {"maps": 100, "kernel": 5, "threshold": 10.0, "winners": 8, "radius": 1}
    c1 |= {"images": args.learn1, "rate_growth": 2.0} | over.get("c1", {})
    c2 |= {"images": args.learn2, "rate_growth": 2.0} | over.get("c2", {})
    dog = DogParams(**({"threshold": 0.1, "steps": 15} | over.get("dog", {})))
    layers: list[SdnnLayer] = [SdnnConv(**c1), SdnnPool(**over.get("pool", {})), SdnnConv(**c2)]
    net = SdnnNetwork(28, 28, dog, layers, seed=args.seed)
    t0 = time.perf_counter()
    for i in order[: args.learn1 + args.learn2]:
        net.present(frames[i])
    learn_s = time.perf_counter() - t0

    def features(idx: np.ndarray) -> np.ndarray:
        rows = [net.present(frames[i]) for i in idx]
        return np.array([r[0] for r in rows if r is not None])

    fit = order[args.learn1 + args.learn2 : args.learn1 + args.learn2 + args.fit]
    x_fit, x_judge = features(fit), features(judge)
    y_fit, y_judge = labels[fit].astype(np.int64), labels[judge].astype(np.int64)
    a, b = standardise(x_fit, x_judge)
    cut = int(0.9 * len(a))
    grid = [10.0**k for k in range(-6, 1)]
    lam = max(grid, key=lambda v: accuracy(ridge(a[:cut], y_fit[:cut], v), a[cut:], y_fit[cut:]))
    l2 = max((1e-6, 1e-4, 1e-2), key=lambda v: accuracy(softmax_fit(a[:cut], y_fit[:cut], v), a[cut:], y_fit[cut:]))
    raw_fit, raw_judge = np.floor(x_fit / 0.25), np.floor(x_judge / 0.25)
    both = standardized_counts(np.vstack([x_fit, x_judge]), np.r_[np.ones(len(fit)), np.zeros(len(judge))])
    out = {
        "set": over,
        "seed": args.seed,
        "ridge": round(100 * accuracy(ridge(a, y_fit, lam), b, y_judge), 2),
        "softmax": round(100 * accuracy(softmax_fit(a, y_fit, l2), b, y_judge), 2),
        "delta_raw": round(100 * delta_one_pass(raw_fit, y_fit, raw_judge, y_judge), 2),
        "delta_standardized": round(100 * delta_one_pass(both[: len(fit)], y_fit, both[len(fit) :], y_judge), 2),
        "convergence": [round(float(np.mean(w * (1 - w))), 4) for w in net.weights],
        "learn_s": round(learn_s, 1),
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
