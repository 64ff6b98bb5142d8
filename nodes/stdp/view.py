"""What a viewer of the graph (a dashboard) sees of an STDP network: learning on or off, every weighted
layer's spikes per map, and the first layer's kernels as small images.

Built only while the node is tapped (``Node.watch``): the first call switches the per-map counting on
(``Network.count_maps``), so an untapped node never pays for it. Counts are totals since then; a viewer
takes the difference of two readings for a rate, which a lost reading does not spoil.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from .network import Network


def network_view(net: Network, *, full: bool) -> dict[str, Any]:
    """``{"learning", "layers": [{"layer", "kind", "spikes": [per map]}], "kernels"?}``; ``full`` adds the
    first layer's kernels (``kernels_image``)."""
    net.count_maps()
    counts = net.map_spikes() or []
    kinds = [row["kind"] for row in net.counters()]
    layers = [{"layer": i, "kind": kinds[i], "spikes": c.tolist()} for i, c in enumerate(counts) if c is not None]
    out: dict[str, Any] = {"learning": net.learning, "layers": layers}
    if full:
        weights = net.first_kernels()
        if weights is not None:
            out["kernels"] = kernels_image(weights)
    return out


def kernels_image(weights: np.ndarray) -> dict[str, Any]:
    """Conv weights ``(M, C, KH, KW)`` in [0, 1] as 8-bit levels (0 = 0, 255 = 1), base64 in that order:
    a few kB even for 64 maps of 2 x 7 x 7."""
    m, c, kh, kw = weights.shape
    levels = np.clip(np.rint(np.asarray(weights, np.float64) * 255.0), 0, 255).astype(np.uint8)
    return {
        "maps": int(m),
        "channels": int(c),
        "height": int(kh),
        "width": int(kw),
        "pixels": base64.b64encode(np.ascontiguousarray(levels).tobytes()).decode("ascii"),
    }
