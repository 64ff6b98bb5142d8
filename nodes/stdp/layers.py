"""The layers of an STDP network as typed, frozen configs, and the shapes they produce.

A config's ``layers`` table is a list of these, each chosen by its ``type`` key ("conv", "pool", "fc")
through the one config loader (``pipeline.config.build_params``), which reports an unknown, missing or
ill-typed key with its path (``[nodes.stdp] layers[1]: unknown key 'mapz'``).

Learning rates: the thesis fixes ``a_plus = -8 * a_minus`` and ``beta_plus = 3`` (Table 3.1 and the
text of 3.2.2) but not the magnitudes. The defaults here (conv ``a_minus = -0.005``, fc
``a_minus = -0.002``) are a starting point meant to be tuned (thesis 3.3.1: performance is stable over
about an order of magnitude of learning rate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from typing_extensions import override

MAX_CHANNELS = 65536  # an output channel index travels as uint16


@dataclass(frozen=True, kw_only=True)
class _LearningLayer:
    """What convolutional and fully connected STDP layers share (each subclass sets its own defaults)."""

    th_learn: float
    """Threshold of the learning accumulators, in weight units (> 0). Table 3.1: 8 (conv1), 30 (conv2,
    fc); section 3.3.2, N-MNIST: 8, 50, 60."""
    th_inf: float
    """Threshold of the inference accumulators, whose spikes the next layer sees, in weight units (> 0).
    Table 3.1 ("threshold propagation"): the same values as ``th_learn``."""
    a_minus: float
    """LTD step of eq. 3.4, added to every synapse whose input did not fire since the neuron's reference
    time, in weight units (<= 0). Not in the thesis; tunable."""
    a_plus: float | None = None
    """LTP amplitude of eq. 3.4, in weight units (>= 0), or None for ``-8 * a_minus`` (Table 3.1's
    ratio)."""
    beta_plus: float = 3.0
    """LTP damping of eq. 3.4, dimensionless (>= 0). Thesis 3.2.2: 3."""
    w_init_mean: float
    """Mean of the initial weights, drawn from N(mean, std) and clipped to [0, 1] (finite). Table 3.1:
    0.8 (conv), 0.67 (fc)."""
    w_init_std: float = 0.1
    """Standard deviation of the initial weights (>= 0). Table 3.1: 0.1."""

    def __post_init__(self) -> None:
        for name, value in (("th_learn", self.th_learn), ("th_inf", self.th_inf)):
            if not (math.isfinite(value) and value > 0):
                msg = f"{name} must be a finite number > 0, got {value!r}"
                raise ValueError(msg)
        if not (math.isfinite(self.a_minus) and self.a_minus <= 0):
            msg = f"a_minus must be finite and <= 0 (depression), got {self.a_minus!r}"
            raise ValueError(msg)
        a_plus = self.a_plus
        if a_plus is not None and not (math.isfinite(a_plus) and a_plus >= 0):
            msg = f"a_plus must be finite and >= 0 (or None for -8 * a_minus), got {a_plus!r}"
            raise ValueError(msg)
        if not (math.isfinite(self.beta_plus) and self.beta_plus >= 0):
            msg = f"beta_plus must be finite and >= 0, got {self.beta_plus!r}"
            raise ValueError(msg)
        if not math.isfinite(self.w_init_mean):
            msg = f"w_init_mean must be finite, got {self.w_init_mean!r}"
            raise ValueError(msg)
        if not (math.isfinite(self.w_init_std) and self.w_init_std >= 0):
            msg = f"w_init_std must be finite and >= 0, got {self.w_init_std!r}"
            raise ValueError(msg)

    @property
    def a_plus_effective(self) -> float:
        """``a_plus``, or ``-8 * a_minus`` when it was left as None."""
        return -8.0 * self.a_minus if self.a_plus is None else float(self.a_plus)


@dataclass(frozen=True, kw_only=True)
class ConvParams(_LearningLayer):
    """A convolutional STDP layer, stride 1, valid (thesis 3.2.3 and Table 3.1)."""

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
    a_minus: float = -0.005
    w_init_mean: float = 0.8

    @override
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
        super().__post_init__()


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


@dataclass(frozen=True, kw_only=True)
class FcParams(_LearningLayer):
    """A fully connected STDP layer over the flattened ``(C, H, W)`` input (thesis 3.2.3). A learning
    spike always resets every learning accumulator of the layer (it is one map)."""

    type: Literal["fc"] = "fc"
    """Which kind of layer this table is."""
    neurons: int
    """Number of neurons N, in [1, 65536]. Thesis: 1000 (MNIST, Table 3.1's network), 1024 (N-MNIST,
    section 3.3.2)."""
    wta_inf: bool = False
    """Whether an inference spike resets every other neuron's inference accumulator. Not in the thesis
    (its fc has no inference inhibition); configs/nmnist.toml turns it on."""
    a_minus: float = -0.002
    w_init_mean: float = 0.67

    @override
    def __post_init__(self) -> None:
        if not (1 <= self.neurons <= MAX_CHANNELS):
            msg = f"neurons must be in [1, {MAX_CHANNELS}], got {self.neurons!r}"
            raise ValueError(msg)
        super().__post_init__()


LayerParams = ConvParams | PoolParams | FcParams


def output_shape(input_shape: Sequence[int], layers: Sequence[LayerParams]) -> tuple[int, int, int]:
    """The ``(C, H, W)`` of the spikes a network of these ``layers`` sends, without building it (no
    weights are drawn); raises ``ValueError`` for a layer that does not fit its input, as ``Network``
    would."""
    c, h, w = (int(v) for v in input_shape)
    for i, p in enumerate(layers):
        if isinstance(p, PoolParams):
            h, w = -(-h // p.size), -(-w // p.size)
        elif isinstance(p, ConvParams):
            if h < p.kernel or w < p.kernel:
                msg = f"layer {i}: kernel {p.kernel} is larger than its input {(c, h, w)}"
                raise ValueError(msg)
            c, h, w = p.maps, h - p.kernel + 1, w - p.kernel + 1
        else:
            c, h, w = p.neurons, 1, 1
    return c, h, w
