"""Which learning rules a conv or fc layer can name, and what a rule's layer must offer the network.

``RULES`` maps a layer's ``rule`` key to the function that builds its state. Thiele's rule builds a
``nodes.stdp.state.WeightedLayer``, which the network runs itself (its historical, tuned path); every
other rule builds an object with the ``RuleLayer`` methods below, and the network calls them. Adding a
rule: its folder under ``nodes/stdp/rules/`` (params, kernel, layer), its two params classes in
``nodes.stdp.layers.LayerParams``, and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from nodes.stdp.records import Columns
from nodes.stdp.shapes import ConvShape, FcShape
from nodes.stdp.state import WeightedLayer, weighted_layer

from .trace.layer import TraceLayer


class RuleLayer(Protocol):
    """A conv or fc layer of a rule other than Thiele's: its state and how the network drives it."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]

    @property
    def params(self) -> ConvShape | FcShape:
        """The layer's table: its shape and its rule's parameters."""
        ...

    @property
    def counters(self) -> np.ndarray:
        """``[inputs, learning spikes, inference spikes]`` (int64), updated in place by ``run``."""
        ...

    def run(self, cols: Columns, learning: bool) -> Columns:
        """Integrate the input spikes in order (learning or not); return the inference spikes they cause."""
        ...

    def maps_learned(self) -> int:
        """How many maps (fc: neurons) have fired a learning spike since the layer was made."""
        ...

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the layer's state by name (no layer index), in canonical layouts."""
        ...

    def expected_state(self) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
        """The shape and dtype of every array ``state_arrays`` returns."""
        ...

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Replace the state with ``arrays`` (already checked against ``expected_state``)."""
        ...


Builder = Callable[[int, Any, tuple[int, int, int], np.random.Generator], "WeightedLayer | RuleLayer"]

#: A rule's name (the layer's ``rule`` key) -> how its layer is built: ``(index, params, input shape,
#: rng)``, drawing its initial weights from ``rng``.
RULES: dict[str, Builder] = {
    "thiele": weighted_layer,
    "trace": TraceLayer.build,
}


def build_layer(
    i: int, p: ConvShape | FcShape, cur: tuple[int, int, int], rng: np.random.Generator
) -> WeightedLayer | RuleLayer:
    """Layer ``i`` over input ``cur``, by its rule's builder (``ValueError`` for a rule not registered)."""
    rule = getattr(p, "rule", None)
    if rule not in RULES:
        msg = f"layer {i} names rule {rule!r}; registered rules: {', '.join(RULES)}"
        raise ValueError(msg)
    return RULES[rule](i, p, cur, rng)
