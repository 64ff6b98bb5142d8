"""The rule-neutral part of each layer kind: its geometry and its winner-take-all choices.

A conv or fc layer table is a learning rule's params class (``nodes.stdp.layers`` for Thiele's rule,
``nodes.stdp.rules.<rule>.params`` for the others) built on ``ConvShape`` or ``FcShape``: the shape says
what the layer connects and who inhibits whom, the rule says how neurons integrate and synapses learn.
Code that only needs shapes (``output_shape``, the thread split) tests ``isinstance(p, ConvShape)``, so
a new rule needs no change there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MAX_CHANNELS = 65536  # an output channel index travels as uint16


@dataclass(frozen=True, kw_only=True)
class ConvShape:
    """A convolutional layer's geometry and WTA radii, stride 1, valid (thesis 3.2.3 and Table 3.1)."""

    type: Literal["conv"] = "conv"
    """Which kind of layer this table is."""
    maps: int
    """Number of feature maps M, in [1, 65536]. Table 3.1's MNIST network and section 3.3.2: 16 (conv1),
    128 (conv2)."""
    kernel: int = 5
    """Filter size K (K x K input positions per channel, >= 1). Table 3.1: 5."""
    r_learn: int = 2
    """Inter-map WTA radius of learning spikes, Chebyshev distance in output positions (>= 0). Table
    3.1: 2."""
    r_inf: int = 0
    """Inhibition radius of inference spikes onto the other maps, in output positions (>= -1; 0 = the
    same position only, -1 = none). Table 3.1: 0."""

    def __post_init__(self) -> None:
        if not (1 <= self.maps <= MAX_CHANNELS):
            msg = f"maps must be in [1, {MAX_CHANNELS}], got {self.maps!r}"
            raise ValueError(msg)
        if self.kernel < 1:
            msg = f"kernel must be >= 1, got {self.kernel!r}"
            raise ValueError(msg)
        if self.r_learn < 0:
            msg = f"r_learn must be >= 0, got {self.r_learn!r}"
            raise ValueError(msg)
        if self.r_inf < -1:
            msg = f"r_inf must be >= -1 (-1 = no inference inhibition), got {self.r_inf!r}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class FcShape:
    """A fully connected layer over the flattened ``(C, H, W)`` input (thesis 3.2.3). It is one map: a
    learning spike's intra-map WTA covers every neuron of the layer."""

    type: Literal["fc"] = "fc"
    """Which kind of layer this table is."""
    neurons: int
    """Number of neurons N, in [1, 65536]. Thesis: 1000 (MNIST, Table 3.1's network), 1024 (N-MNIST,
    section 3.3.2)."""
    wta_inf: bool = False
    """Whether an inference spike resets every other neuron's inference state. Not in the thesis (its
    fc has no inference inhibition); configs/nmnist.toml turns it on."""

    def __post_init__(self) -> None:
        if not (1 <= self.neurons <= MAX_CHANNELS):
            msg = f"neurons must be in [1, {MAX_CHANNELS}], got {self.neurons!r}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class PoolParams:
    """Non-overlapping pooling that forwards every spike (thesis 3.2.3). Partial windows at the border
    are kept: the pooled size is ``ceil(H / size)``."""

    type: Literal["pool"] = "pool"
    """Which kind of layer this table is."""
    size: int = 2
    """Window size s (s x s input positions, >= 1). Thesis 3.2.3: 2."""

    def __post_init__(self) -> None:
        if self.size < 1:
            msg = f"size must be >= 1, got {self.size!r}"
            raise ValueError(msg)


def output_shape(
    input_shape: Sequence[int], layers: Sequence[ConvShape | FcShape | PoolParams]
) -> tuple[int, int, int]:
    """The ``(C, H, W)`` of the spikes a network of these ``layers`` sends, without building it (no
    weights are drawn); raises ``ValueError`` for a layer that does not fit its input, as ``Network``
    would."""
    c, h, w = (int(v) for v in input_shape)
    for i, p in enumerate(layers):
        if isinstance(p, PoolParams):
            h, w = -(-h // p.size), -(-w // p.size)
        elif isinstance(p, ConvShape):
            if h < p.kernel or w < p.kernel:
                msg = f"layer {i}: kernel {p.kernel} is larger than its input {(c, h, w)}"
                raise ValueError(msg)
            c, h, w = p.maps, h - p.kernel + 1, w - p.kernel + 1
        else:
            c, h, w = p.neurons, 1, 1
    return c, h, w
