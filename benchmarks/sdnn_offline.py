"""An offline linear readout of SDNN features, with numpy only: the fair counterpart of the paper's SVM.

Reads the ``.npz`` an ``sdnn`` node writes (``features_out``): rows with ``train = 1`` from the last phase
that has any (the features frozen) are the training set, rows with ``train = 0`` the test set. Features are
standardised on the training rows. Two classifiers, each with its one hyperparameter chosen on the last
10 % of the training rows (held out, never the test rows), then refitted on all training rows:

* ridge least squares on one-hot targets (``lambda`` from a grid);
* softmax (multinomial logistic) regression by minibatch SGD with momentum and L2 (``l2`` from a grid).

    python benchmarks/sdnn_offline.py sdnn-features.npz [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def split(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` of a features file."""
    d = np.load(path)
    x, y, train, phase = d["features"].astype(np.float64), d["label"], d["train"], d["phase"]
    if not train.any() or train.all():
        sys.exit(f"{path}: needs rows with train = 1 and rows with train = 0")
    last = phase[train == 1].max()
    tr = (train == 1) & (phase == last)
    te = train == 0
    return x[tr], y[tr], x[te], y[te]


def standardise(x_tr: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Zero mean, unit variance by the training rows, plus a bias column."""
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-9
    return [np.c_[(x - mu) / sd, np.ones(len(x))] for x in (x_tr, *others)]


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights of ridge least squares on one-hot targets."""
    t = np.eye(int(y.max()) + 1)[y]
    return np.linalg.solve(x.T @ x + lam * len(x) * np.eye(x.shape[1]), x.T @ t)


def softmax_fit(x: np.ndarray, y: np.ndarray, l2: float, epochs: int = 15, batch: int = 128) -> np.ndarray:
    """Weights of L2-regularised softmax regression: minibatch SGD with momentum from zero, rows in a
    seeded order (deterministic)."""
    t = np.eye(int(y.max()) + 1)[y]
    w = np.zeros((x.shape[1], t.shape[1]))
    v = np.zeros_like(w)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        lr = 0.1 / (1 + epoch)
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // batch)):
            z = x[idx] @ w
            z -= z.max(1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(1, keepdims=True)
            v = 0.9 * v - lr * (x[idx].T @ (p - t[idx]) / len(idx) + l2 * w)
            w += v
    return w


def accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose highest score is their label."""
    return float(((x @ w).argmax(1) == y).mean())


def main() -> None:
    """Fit, select on held-out training rows, report test accuracy."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    x_tr, y_tr, x_te, y_te = split(args.features)
    cut = int(len(x_tr) * 0.9)
    fit_x, val_x = standardise(x_tr[:cut], x_tr[cut:])
    fit_y, val_y = y_tr[:cut], y_tr[cut:]
    lam = max((10.0**k for k in range(-6, 1)), key=lambda v: accuracy(ridge(fit_x, fit_y, v), val_x, val_y))
    l2 = max((10.0**k for k in (-6, -4, -2)), key=lambda v: accuracy(softmax_fit(fit_x, fit_y, v), val_x, val_y))
    all_x, test_x = standardise(x_tr, x_te)
    out = {
        "train_rows": len(x_tr),
        "test_rows": len(x_te),
        "features": x_tr.shape[1],
        "ridge_lambda": lam,
        "ridge_validation": accuracy(ridge(fit_x, fit_y, lam), val_x, val_y),
        "ridge_test": accuracy(ridge(all_x, y_tr, lam), test_x, y_te),
        "softmax_l2": l2,
        "softmax_validation": accuracy(softmax_fit(fit_x, fit_y, l2), val_x, val_y),
        "softmax_test": accuracy(softmax_fit(all_x, y_tr, l2), test_x, y_te),
    }
    text = json.dumps(out, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
