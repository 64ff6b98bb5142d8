"""Preferred-feature projection on hand-made weights, and the PNG files being written."""

from __future__ import annotations

import json

import numpy as np

from nodes.plots import preferred_features, write_plots
from pipeline.checkpoint import save_state


def tiny_state() -> dict[str, np.ndarray]:
    cfg = {
        "input": [1, 6, 6],
        "layers": [
            {"type": "conv", "maps": 2, "kernel": 2},
            {"type": "pool", "size": 2},
            {"type": "conv", "maps": 1, "kernel": 2},
        ],
    }
    w0 = np.zeros((2, 1, 2, 2))
    w0[0, 0] = [[1, 0], [0, 0]]  # map 0: top-left pixel
    w0[1, 0] = [[0, 0], [0, 1]]  # map 1: bottom-right pixel
    w2 = np.zeros((1, 2, 2, 2))
    w2[0, 0, 0, 0] = 0.5  # at pooled (0,0) prefers map 0 (0.5 > 0.1)
    w2[0, 1, 0, 0] = 0.1
    w2[0, 1, 1, 1] = 1.0  # at pooled (1,1) prefers map 1
    return {"node.config": np.array(json.dumps(cfg)), "0.weight": w0, "2.weight": w2}


def test_preferred_features_hand_case():
    (_, f0), (_, f2) = preferred_features(tiny_state())
    assert f0.shape == (2, 1, 2, 2)
    assert f0[0, 0, 0, 0] == 1
    assert f0[1, 0, 1, 1] == 1
    # conv2 over a pooled grid: cell step 2 input pixels, each cell covers 2x2 conv1 positions
    assert f2.shape == (1, 1, 5, 5)
    img = f2[0, 0]
    # pooled (0,0) -> map-0 feature (pixel (0,0) of its kernel) at offsets (0..1, 0..1), weight 0.5 / 4 each
    expected = np.zeros((5, 5))
    for a in range(2):
        for b in range(2):
            expected[a, b] += 0.5 / 4
            expected[2 + a + 1, 2 + b + 1] += 1.0 / 4  # pooled (1,1) -> map-1 feature (its pixel (1,1))
    # pooled (0,1) and (1,0) have all-zero weights: argmax picks map 0 with strength 0 -> nothing added
    assert np.allclose(img, expected)


def test_write_plots(tmp_path):
    save_state(tmp_path / "stdp.npz", tiny_state())
    (tmp_path / "r.json").write_text(json.dumps({"curve": [[100, 0.5, 0.4], [200, 0.7, 0.55]], "test_accuracy": 0.8}))
    paths = write_plots(tmp_path / "out", state=tmp_path / "stdp.npz", results=tmp_path / "r.json")
    assert [p.name for p in paths] == ["features.png", "weights.png", "accuracy.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000 for p in paths)
