"""Pictures of what the network learned: preferred features per layer (thesis Fig. 3.4 / 3.11), weight
histograms (Fig. 3.5) and the online accuracy curve (Fig. 3.6).

Preferred features are built bottom-up as in the thesis: a first-layer feature is its kernel; a unit of a
higher layer gets, at each position of its receptive field, the lower-layer feature to which it has the
strongest connection, scaled by that weight and placed where that position lies in the input. A pooling
window spreads a position over its ``size x size`` cells (averaged), which blurs higher features the way
the thesis's figures are blurred. Two-channel inputs are shown as ON minus OFF.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.checkpoint import load_state
from pipeline.errors import SpikestreamError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def network_config(state: dict[str, np.ndarray]) -> dict[str, Any]:
    """The network description an stdp node stores in its checkpoint."""
    if "node.config" not in state:
        msg = "this checkpoint has no network description (not an stdp node's checkpoint?)"
        raise SpikestreamError(msg)
    return dict(json.loads(str(state["node.config"])))


def preferred_features(state: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """``[(layer name, features (units, channels, h, w))]`` for every weighted layer, in input space."""
    cfg = network_config(state)
    channels = int(cfg["input"][0])
    prev = np.eye(channels, dtype=np.float64).reshape(channels, channels, 1, 1)  # one per input channel
    step = 1  # input pixels between neighbouring cells of the current grid
    offsets = [(0, 0)]  # sub-positions (input pixels) one cell of the grid covers
    grid = tuple(int(v) for v in cfg["input"][1:])
    out: list[tuple[str, np.ndarray]] = []
    for i, layer in enumerate(cfg["layers"]):
        kind = layer["type"]
        if kind == "pool":
            s = int(layer.get("size", 2))
            offsets = [(oy + a * step, ox + b * step) for oy, ox in offsets for a in range(s) for b in range(s)]
            step *= s
            grid = (-(-grid[0] // s), -(-grid[1] // s))
            continue
        w = np.asarray(state[f"{i}.weight"], dtype=np.float64)
        if kind == "fc":
            w = w.reshape(w.shape[0], prev.shape[0], grid[0], grid[1])
        units, _, kh, kw = w.shape
        span = max(max(o) for o in offsets)
        h = (kh - 1) * step + span + prev.shape[2]
        wd = (kw - 1) * step + span + prev.shape[3]
        feats = np.zeros((units, channels, h, wd))
        best = w.argmax(axis=1)  # (units, kh, kw): the strongest lower feature at each position
        strength = np.take_along_axis(w, best[:, None], axis=1)[:, 0]
        for ky in range(kh):
            for kx in range(kw):
                piece = prev[best[:, ky, kx]] * strength[:, ky, kx, None, None, None]
                for oy, ox in offsets:
                    y0, x0 = ky * step + oy, kx * step + ox
                    feats[:, :, y0 : y0 + prev.shape[2], x0 : x0 + prev.shape[3]] += piece / len(offsets)
        out.append((f"layer {i} ({kind}, {units} {'maps' if kind == 'conv' else 'neurons'})", feats))
        prev, offsets = feats, [(0, 0)]
        grid = (grid[0] - kh + 1, grid[1] - kw + 1) if kind == "conv" else (1, 1)
    return out


def _display(feat: np.ndarray) -> np.ndarray:
    shown: np.ndarray = feat[1] - feat[0] if feat.shape[0] == 2 else feat[0]
    return shown


def _file_backend() -> None:
    """matplotlib on its file-only backend (no display needed), before pyplot is imported."""
    import matplotlib as mpl

    mpl.use("Agg")


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def features_figure(state: dict[str, np.ndarray], max_units: int = 64) -> Figure:
    """Every layer's preferred features (up to ``max_units`` each, the title says how many of how many),
    with a colour key: ON minus OFF for two-channel inputs (red ON, blue OFF), each feature scaled to its
    own largest value."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    _file_backend()
    import matplotlib.pyplot as plt

    layers = preferred_features(state)
    cols = 16
    rows = [min(max_units, f.shape[0]) for _, f in layers]
    nrows = sum(-(-r // cols) for r in rows)
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 0.9, nrows * 0.9 + 0.4 * len(layers)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    two = bool(layers) and layers[0][1].shape[1] == 2
    cmap = "RdBu_r" if two else "gray"
    row = 0
    for (name, feats), n in zip(layers, rows, strict=True):
        for k in range(n):
            ax = axes[row + k // cols, k % cols]
            img = _display(feats[k])
            lim = max(abs(img).max(), 1e-9)
            ax.imshow(img, cmap=cmap, vmin=-lim if two else 0, vmax=lim)
            if k == 0:
                shown = f": all {n} shown" if n == feats.shape[0] else f": the first {n} of {feats.shape[0]} shown"
                ax.set_title(name + shown, fontsize=8, loc="left")
        row += -(-n // cols)
    # (no tight_layout: a layer's title runs on over the next, untitled, pictures of its row on purpose)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.01, right=0.93, bottom=0.1 / height, top=1 - 0.3 / height, wspace=0.1, hspace=0.5)
    key = fig.colorbar(
        ScalarMappable(Normalize(-1 if two else 0, 1), cmap=cmap), cax=fig.add_axes((0.945, 0.15, 0.012, 0.7))
    )
    if two:
        key.set_ticks([-1, 0, 1], labels=["OFF", "0", "ON"])
    else:
        key.set_ticks([0, 1], labels=["0", "max"])
    key.set_label("preferred input, each feature scaled to its largest value", fontsize=8)
    return fig


def plot_features(state: dict[str, np.ndarray], path: Path, max_units: int = 64) -> Path:
    """Draw every layer's preferred features (see :func:`features_figure`) into the PNG at ``path``."""
    return _save(features_figure(state, max_units), path)


def weights_figure(state: dict[str, np.ndarray]) -> Figure:
    """A histogram of each layer's weights (synapse counts on a log scale)."""
    _file_backend()
    import matplotlib.pyplot as plt

    keys = sorted((k for k in state if k.endswith(".weight")), key=lambda k: int(k.split(".")[0]))
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        w = np.asarray(state[key])
        ax.hist(w.ravel(), bins=50, range=(0, 1), color="tab:blue")
        ax.set_title(f"layer {key.split('.')[0]}: {w.size:,} weights", fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("weight")
        ax.set_ylabel("synapses (log scale)")
    fig.tight_layout()
    return fig


def plot_weight_histograms(state: dict[str, np.ndarray], path: Path) -> Path:
    """Draw a histogram of each layer's weights (see :func:`weights_figure`) into the PNG at ``path``."""
    return _save(weights_figure(state), path)


def accuracy_figure(results: dict[str, Any]) -> Figure:
    """The online accuracy curve of a results document, with the test accuracy as a line."""
    _file_backend()
    import matplotlib.pyplot as plt

    curve = np.asarray(results.get("curve") or [], dtype=np.float64).reshape(-1, 3)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if len(curve):
        ax.plot(curve[:, 0], 100 * curve[:, 1], label=f"last {results.get('window', 1000)} samples")
        ax.plot(curve[:, 0], 100 * curve[:, 2], label="cumulative", alpha=0.7)
    if results.get("test_accuracy") is not None:
        ax.axhline(
            100 * results["test_accuracy"], color="k", ls="--", label=f"test {100 * results['test_accuracy']:.2f} %"
        )
    ax.set_xlabel("training samples")
    ax.set_ylabel("online accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_accuracy(results: dict[str, Any], path: Path) -> Path:
    """Draw the online accuracy curve of a results file (see :func:`accuracy_figure`) into the PNG at ``path``."""
    return _save(accuracy_figure(results), path)


def write_plots(out: Path, *, state: Path | None = None, results: Path | None = None) -> list[Path]:
    """Write the plots a checkpoint (``state``) and a results file allow into ``out``; returns them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if state is not None:
        st = load_state(state)
        written.append(plot_features(st, out / "features.png"))
        written.append(plot_weight_histograms(st, out / "weights.png"))
    if results is not None:
        try:
            res = json.loads(Path(results).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"cannot read results {results}: {exc}"
            raise SpikestreamError(msg) from None
        written.append(plot_accuracy(res, out / "accuracy.png"))
    return written


def register(sub: Any) -> None:
    """``spikestream plot``."""
    p = sub.add_parser("plot", help="draw learned features, weight histograms and the accuracy curve as PNGs")
    p.add_argument("--state", type=Path, help="an stdp node's checkpoint (STATE_DIR/NODE.npz)")
    p.add_argument("--results", type=Path, help="a results JSON from `spikestream run --results`")
    p.add_argument("--out", type=Path, default=Path("plots"), help="output folder (default: plots)")

    def run(args: argparse.Namespace) -> int:
        if args.state is None and args.results is None:
            msg = "give --state and/or --results"
            raise SpikestreamError(msg)
        for path in write_plots(args.out, state=args.state, results=args.results):
            print(path)  # noqa: T201 - the plot command lists the files it wrote
        return 0

    p.set_defaults(func=run)
