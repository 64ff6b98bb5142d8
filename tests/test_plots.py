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


def wide_state(maps: int, channels: int = 2) -> dict[str, np.ndarray]:
    """One conv layer of ``maps`` random 3x3 kernels over ``channels`` input channels."""
    cfg = {"input": [channels, 8, 8], "layers": [{"type": "conv", "maps": maps, "kernel": 3}]}
    w = np.random.default_rng(0).random((maps, channels, 3, 3))
    return {"node.config": np.array(json.dumps(cfg)), "0.weight": w}


def titles(fig) -> list[str]:
    return [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]


def test_feature_titles_say_how_many_of_how_many_are_shown_and_there_is_a_colour_key():
    """128 maps, 64 drawn: the title says so (it said "128 maps" over 64 pictures); a colour key says
    what red and blue mean."""
    import matplotlib.pyplot as plt

    from nodes.plots import features_figure

    fig = features_figure(wide_state(128))
    assert titles(fig) == ["layer 0 (conv, 128 maps): the first 64 of 128 shown"]
    assert sum(bool(ax.images) for ax in fig.axes) == 64
    key = fig.axes[-1]
    assert [t.get_text() for t in key.get_yticklabels()] == ["OFF", "0", "ON"]
    assert "scaled" in key.get_ylabel()
    plt.close(fig)
    fig = features_figure(wide_state(10, channels=1))
    assert titles(fig) == ["layer 0 (conv, 10 maps): all 10 shown"]
    assert [t.get_text() for t in fig.axes[-1].get_yticklabels()] == ["0", "max"]
    plt.close(fig)


def test_weight_histograms_and_accuracy_curve_have_labelled_axes():
    import matplotlib.pyplot as plt

    from nodes.plots import accuracy_figure, weights_figure

    fig = weights_figure(tiny_state())
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [("weight", "synapses (log scale)")] * 2
    assert [ax.get_title() for ax in fig.axes] == ["layer 0: 8 weights", "layer 2: 8 weights"]
    plt.close(fig)
    fig = accuracy_figure({"curve": [[100, 0.5, 0.4]], "test_accuracy": 0.8})
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("training samples", "online accuracy (%)")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["last 1000 samples", "cumulative", "test 80.00 %"]
    plt.close(fig)
