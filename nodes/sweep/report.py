"""What a sweep gives its user: the table of trials (CSV and a printed summary), the best configuration as
a graph file, and plots (the metric against each parameter; the trials' learning curves)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .spec import Sweep
from .toml_text import toml_document

#: What a trial's row says of how it ended.
DONE, STOPPED, ERROR, UNFINISHED = "done", "stopped early", "error", "not finished"


@dataclass
class Row:
    """One trial of the table. ``curve``: its reported ``(samples, window accuracy)`` points."""

    trial_id: str
    status: str
    seed: int | None
    params: dict[str, Any]
    metric: float | None
    figures: dict[str, Any]
    error: str | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)

    @property
    def stopped_early(self) -> bool:
        """Whether the scheduler stopped the trial before the end of its stream."""
        return self.status == STOPPED


#: The figure columns of the table, after the parameters.
FIGURES = (
    "validation_accuracy",
    "train_accuracy",
    "window_accuracy",
    "samples",
    "trial_wall_s",
    "events_per_s",
    "results_file",
)


def write_table(rows: Sequence[Row], keys: Sequence[str], metric: str, path: Path) -> None:
    """The table as CSV: one line per trial, best first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        figures = [f for f in FIGURES if f != metric]  # the metric's column comes first, once
        w.writerow(["trial_id", "status", "stopped_early", "seed", *keys, metric, *figures, "error"])
        for r in rows:
            w.writerow(
                [r.trial_id, r.status, r.stopped_early, r.seed, *(r.params.get(k) for k in keys), r.metric]
                + [r.figures.get(f) for f in figures]
                + [r.error]
            )


def summary_lines(rows: Sequence[Row], keys: Sequence[str], metric: str) -> list[str]:
    """The table as text lines, best first: parameters, seed, metric, wall time, events/s, how it ended."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)

    head = ["trial", *(k.rsplit(".", 1)[-1] if len(k) > 24 else k for k in keys), "seed", metric, "wall s"]
    head += ["M ev/s", "ended"]
    body = []
    for r in rows:
        eps = r.figures.get("events_per_s")
        wall = r.figures.get("trial_wall_s")
        ended = r.status + (f": {r.error.splitlines()[0][:60]}" if r.error else "")
        wall_text = f"{wall:.1f}" if wall is not None else "-"
        eps_text = f"{eps / 1e6:.3f}" if eps else "-"
        params = [cell(r.params.get(k)) for k in keys]
        body.append([r.trial_id, *params, cell(r.seed), cell(r.metric), wall_text, eps_text, ended])
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(len(head))]
    return ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip() for line in [head, *body]]


def sort_rows(rows: Sequence[Row]) -> list[Row]:
    """Best first: finished trials by metric, then those stopped early, then errors."""
    rank = {DONE: 0, STOPPED: 1, UNFINISHED: 2, ERROR: 3}

    def key(r: Row) -> tuple[int, float]:
        m = r.metric if r.metric is not None and not math.isnan(r.metric) else -math.inf
        return rank.get(r.status, 4), -m

    return sorted(rows, key=key)


def write_best(sweep: Sweep, best: Row, metric: str, path: Path) -> None:
    """The best trial's parameters on the base graph (its own phases: the protocol of the final test), as a
    graph file for ``spikestream run``."""
    raw = sweep.trial_raw(best.params, seed=best.seed, fixed=False)
    chosen = ", ".join(f"{k} = {v}" for k, v in best.params.items())
    header = (
        f"The best trial of sweep {sweep.path.name} (trial {best.trial_id}): {metric} {best.metric:.4f}\n"
        f"on the sweep's held-out protocol, with {chosen or 'the base values'}, seed {best.seed};\n"
        f"otherwise {sweep.base_path.name} as it is.  spikestream run {path.name}"
    )
    path.write_text(toml_document(raw, header))


def write_plots(rows: Sequence[Row], keys: Sequence[str], metric: str, folder: Path) -> list[Path]:
    """PNG plots: the metric against each parameter (trials stopped early hollow), and the learning curves."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key in keys:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for status, face in ((DONE, "C0"), (STOPPED, "none")):
            pts = [
                (r.params[key], r.metric if status == DONE else r.figures.get("window_accuracy"))
                for r in rows
                if r.status == status and isinstance(r.params.get(key), int | float)
            ]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                label = metric if status == DONE else "stopped early (last window accuracy)"
                ax.scatter(xs, ys, label=label, facecolors=face, edgecolors="C0" if status == DONE else "C1")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = folder / f"metric-vs-{key.replace('.', '_').replace('[', '_').replace(']', '')}.png"
        fig.savefig(name, dpi=100)
        plt.close(fig)
        written.append(name)
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        if r.curve:
            xs, ys = zip(*r.curve, strict=True)
            ax.plot(xs, ys, lw=1, ls="-" if r.status == DONE else ":", label=r.trial_id if len(rows) <= 10 else None)
    ax.set_xlabel("training samples")
    ax.set_ylabel("prequential accuracy (window)")
    ax.set_title("learning curves (dotted: stopped early)")
    if len(rows) <= 10:
        ax.legend(fontsize=6)
    fig.tight_layout()
    curves = folder / "learning-curves.png"
    fig.savefig(curves, dpi=100)
    plt.close(fig)
    return [*written, curves]
