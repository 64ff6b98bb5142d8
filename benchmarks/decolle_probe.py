"""Diagnose a DECOLLE layer on N-MNIST without the graph: activity, local readout and weight steps while it
learns, then how much its frozen spike counts tell a linear probe.

The layer learns (one pass) from the samples ``Train[:300]`` in a seeded order (``--n`` of them), encoded as
``configs/nmnist-decolle.toml`` does (17x17, polarities merged, 1 ms refractory); every 50 samples it prints
the mean output spikes per sample, the neurons that fired, how often the layer's own fixed readout of its
spike counts names the label, and the norm of a sample's weight change. Then, learning off, the spike counts
of ``Train[300:600]`` fit a ridge probe (standardised counts, one-hot targets, lambda chosen on its last 60
samples) that is judged on ``Train[600:]``: a measure of what the features hold, free of the online readout
that learns beside a changing layer in the graph. Held-out training data only; never the test split.

    python benchmarks/decolle_probe.py --n 150 eta=1e-8 w_std=0.05 quiet=3 floor=0
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from sdnn_offline import accuracy, ridge, standardise

from nodes.decolle.network import DecolleLayer, DecolleNetwork, DecolleParams
from nodes.encoder.events import EventTransform, TransformParams
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE
from recordings import NMnistDataset

SIDE = 17


def layer_of(pairs: list[str]) -> DecolleLayer:
    """A layer from ``key=value`` pairs, each value converted to the field's default's type."""
    defaults = {f.name: f.default for f in fields(DecolleLayer)}
    kw: dict[str, Any] = {"w_std": 0.02, "eta": 0.0}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key not in defaults:
            msg = f"unknown layer key {key!r}"
            raise SystemExit(msg)
        kind = type(defaults[key])
        kw[key] = text if kind is str else kind(float(text)) if kind is int else float(text)
    return DecolleLayer(**kw)


class Feeder:
    """Encodes samples and lays them end to end on one time line, one labelled segment each."""

    def __init__(self, ds: NMnistDataset, net: DecolleNetwork) -> None:
        self.ds, self.net, self.t0 = ds, net, 0
        self.params = TransformParams(
            in_width=34, in_height=34, out_width=SIDE, out_height=SIDE, channels=1, refractory_us=1000
        )

    def run(self, i: int, train: bool) -> np.ndarray:
        """Spike counts per neuron of the top layer for sample ``i``."""
        ev = EventTransform(self.params)(self.ds.load(i))
        spikes = np.zeros(len(ev), SPIKE_DTYPE)
        spikes["t"] = ev["t"] - ev["t"][0] + self.t0
        spikes["c"] = ev["y"].astype(np.int64) * SIDE + ev["x"]
        label = np.zeros(1, LABEL_DTYPE)
        label[0] = (self.t0, int(self.ds.labels[i]), int(train))
        self.net.add_labels(label)
        out = self.net.process(spikes)
        self.t0 = int(spikes["t"][-1]) + 1
        return np.bincount(out["c"], minlength=self.net.n_outputs).astype(np.float64)


def probe(f_fit: np.ndarray, y_fit: np.ndarray, f_val: np.ndarray, y_val: np.ndarray) -> float:
    """Ridge on standardised counts (``sdnn_offline``'s); lambda chosen on the fit set's last 60 rows, then
    refitted on all. ``ridge`` scales its penalty by the rows; dividing keeps these lambdas absolute."""
    a, b = standardise(f_fit, f_val)
    lams = (1.0, 10.0, 100.0)
    held = [accuracy(ridge(a[:-60], y_fit[:-60], lam / (len(a) - 60)), a[-60:], y_fit[-60:]) for lam in lams]
    return accuracy(ridge(a, y_fit, lams[int(np.argmax(held))] / len(a)), b, y_val)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("layer", nargs="*", help="layer fields as key=value (DecolleLayer)")
    ap.add_argument("--n", type=int, default=300, help="learning samples drawn from Train[:300]")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    layer = layer_of(args.layer)
    root = Path(os.environ.get("SPIKESTREAM_DATA", "../shared/recordings")) / "nmnist"
    ds = NMnistDataset(root, split="Train")
    net = DecolleNetwork(DecolleParams(n_inputs=SIDE * SIDE, layers=(layer,), seed=args.seed))
    feeder = Feeder(ds, net)
    g = net.layers[0]["g"]
    rows: list[tuple[float, float, float, float]] = []
    start = time.perf_counter()
    for k, i in enumerate(np.random.default_rng(args.seed).permutation(300)[: args.n].tolist()):
        before = net.layers[0]["w"].copy()
        counts = feeder.run(i, train=True)
        hit = float(counts.any() and np.argmax(g @ counts) == ds.labels[i])
        rows.append((counts.sum(), float((counts > 0).sum()), hit, float(np.linalg.norm(net.layers[0]["w"] - before))))
        if (k + 1) % 50 == 0:
            m = np.mean(rows[-50:], axis=0)
            print(
                f"{k + 1:4d} spikes/sample {m[0]:8.1f}  fired {m[1]:5.1f}  local readout {m[2]:.2f}  "
                f"|dw| {m[3]:.2e}  |w| {np.linalg.norm(net.layers[0]['w']):.2f}  {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    net.flush()
    net.freeze()
    f_fit = np.array([feeder.run(i, train=False) for i in range(300, 600)])
    f_val = np.array([feeder.run(i, train=False) for i in range(600, 800)])
    y_fit, y_val = ds.labels[300:600], ds.labels[600:800]
    result = {
        "layer": {a: v for a, v in vars(layer).items() if v != getattr(DecolleLayer(), a)},
        "n": args.n,
        "probe_validation": probe(f_fit, y_fit, f_val, y_val),
        "validation_spikes_per_sample": float(f_val.sum(1).mean()),
        "neurons_firing_on_validation": int((f_val.sum(0) > 0).sum()),
        "local_readout_validation": float((np.argmax(f_val @ g.T, 1) == y_val).mean()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
