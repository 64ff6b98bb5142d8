"""What the nodes show of their state (``Node.watch``, carried by their metrics messages): the first
layer's kernels of an STDP node, and the spikes per map of each of its layers.

The nodes send totals since they were first watched, stamped with their own clock; the rate per map is
the difference of the last two readings over the time between them, so a reading lost on the tap only
widens the interval. Not thread-safe by itself: ``DashboardState`` calls it under its lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LayerSpikes:
    """The last two readings of one node's per-layer spike totals: ``(wall_ns, {layer: (kind, totals)})``."""

    readings: list[tuple[int, dict[int, tuple[str, np.ndarray]]]] = field(default_factory=list)


class NodeViews:
    """The newest kernels and per-layer spike readings of every node that shows them."""

    def __init__(self) -> None:
        self._kernels: dict[str, dict[str, Any]] = {}
        self._layers: dict[str, LayerSpikes] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}  # what ``layers`` says, made once per reading

    def update(self, node: str, view: dict[str, Any], wall_ns: int) -> None:
        """Take what ``node`` showed at ``wall_ns`` (its clock)."""
        kernels = view.get("kernels")
        if isinstance(kernels, dict):
            self._kernels[node] = kernels | {"wall_ns": wall_ns}
        layers = view.get("layers")
        if isinstance(layers, list) and layers:
            reading = {
                int(row["layer"]): (str(row.get("kind", "")), np.asarray(row.get("spikes") or [], np.int64))
                for row in layers
                if isinstance(row, dict) and "layer" in row
            }
            held = self._layers.setdefault(node, LayerSpikes())
            held.readings = [*held.readings[-1:], (wall_ns, reading)]
            self._rows[node] = _rows(held)

    def kernels(self) -> dict[str, dict[str, Any]]:
        """Every node's newest kernels image (``nodes.stdp.view.kernels_image``) with its age in seconds."""
        wall = time.time_ns()
        return {
            n: {k: v for k, v in img.items() if k != "wall_ns"} | {"age_s": round((wall - img["wall_ns"]) / 1e9, 1)}
            for n, img in self._kernels.items()
        }

    def layers(self) -> dict[str, list[dict[str, Any]]]:
        """Per node, per weighted layer: its kind, its maps and each map's spikes per second between the last
        two readings (all 0 until there are two)."""
        return dict(self._rows)


def _rows(held: LayerSpikes) -> list[dict[str, Any]]:
    """``NodeViews.layers`` of one node (made when a reading comes, not for every frame)."""
    t1, last = held.readings[-1]
    t0, first = held.readings[0]
    dt = (t1 - t0) / 1e9
    rows = []
    for i, (kind, totals) in sorted(last.items()):
        before = first.get(i, (kind, totals))[1]
        per_s = np.zeros(totals.shape[0])
        if dt > 0 and before.shape == totals.shape:
            per_s = np.maximum(totals - before, 0) / dt
        rows.append(
            {
                "layer": i,
                "kind": kind,
                "maps": int(totals.shape[0]),
                "per_s": np.round(per_s, 1).tolist(),
                "firing": int(np.count_nonzero(per_s)),
            }
        )
    return rows
