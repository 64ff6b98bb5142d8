"""The layers of an SDNN (Kheradpisheh et al. 2018, Table 1 for MNIST) and the input stage's parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class SdnnConv:
    """A convolutional layer of IF neurons, one spike each per image, learnt by the simplified STDP."""

    type: Literal["conv"] = "conv"
    #: feature maps (MNIST: 30, then 100)
    maps: int
    #: kernel side, odd or even, >= 1 (MNIST: 5)
    kernel: int = 5
    #: rows/columns of never-spiking inputs added on each side before the correlation: 0 = "valid" (maps
    #: shrink by ``kernel - 1``), ``kernel // 2`` = "same" for an odd kernel (edges near the border count)
    pad: int = 0
    #: firing threshold, in weight units (MNIST: 15, then 10)
    threshold: float
    #: STDP steps: ``dw = a · w (1 − w)`` with ``a_plus`` > 0 for causal inputs, ``a_minus`` < 0 otherwise
    a_plus: float = 0.004
    a_minus: float = -0.003
    #: learning winners per image: one per map at most, ``radius`` (Chebyshev) inhibits the others' learning
    winners: int = 1
    radius: int = 0
    #: images this layer learns from (layer-by-layer: layer n learns after layer n-1's images)
    images: int = 0
    #: every ``rate_every`` learning images, both rates grow by ``rate_growth`` until ``a_plus`` reaches
    #: ``a_plus_max`` (a schedule of the reference implementation; 1.0 = constant rates)
    rate_growth: float = 1.0
    rate_every: int = 500
    a_plus_max: float = 0.15
    #: initial weights ~ N(w_mean, w_std), clipped to [0, 1] (the paper: 0.8, 0.05)
    w_mean: float = 0.8
    w_std: float = 0.05

    def __post_init__(self) -> None:
        if self.maps < 1 or self.kernel < 1 or self.pad < 0:
            msg = f"conv needs maps >= 1, kernel >= 1 and pad >= 0, got {self.maps}, {self.kernel}, {self.pad}"
            raise ValueError(msg)
        if not self.threshold > 0:
            msg = f"conv threshold must be > 0, got {self.threshold}"
            raise ValueError(msg)
        if not (0 < self.a_plus <= self.a_plus_max <= 1 and -1 <= self.a_minus < 0):
            msg = (
                f"STDP steps need 0 < a_plus <= a_plus_max <= 1 and -1 <= a_minus < 0, got a_plus={self.a_plus}, "
                f"a_plus_max={self.a_plus_max}, a_minus={self.a_minus}"
            )
            raise ValueError(msg)
        if self.winners < 1 or self.radius < 0 or self.images < 0 or self.rate_every < 1:
            msg = (
                f"conv needs winners >= 1, radius >= 0, images >= 0, rate_every >= 1, got {self.winners}, "
                f"{self.radius}, {self.images}, {self.rate_every}"
            )
            raise ValueError(msg)
        if not self.rate_growth >= 1.0:
            msg = f"rate_growth must be >= 1, got {self.rate_growth}"
            raise ValueError(msg)
        if not (0 <= self.w_mean <= 1 and self.w_std >= 0):
            msg = f"initial weights need w_mean in [0, 1] and w_std >= 0, got {self.w_mean}, {self.w_std}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class SdnnPool:
    """First-spike (max) pooling: a pooled neuron spikes with the first spike of its window."""

    type: Literal["pool"] = "pool"
    size: int = 2
    stride: int = 2

    def __post_init__(self) -> None:
        if self.size < 1 or self.stride < 1:
            msg = f"pool needs size >= 1 and stride >= 1, got {self.size}, {self.stride}"
            raise ValueError(msg)


SdnnLayer = SdnnConv | SdnnPool


def layer_shapes(input_shape: tuple[int, int, int], layers: Sequence[SdnnLayer]) -> list[tuple[int, int, int]]:
    """The output shape ``(C, H, W)`` of every layer; a layer that does not fit its input is a ValueError."""
    shapes = []
    c, h, w = input_shape
    for i, layer in enumerate(layers):
        if isinstance(layer, SdnnConv):
            c, h, w = layer.maps, h + 2 * layer.pad - layer.kernel + 1, w + 2 * layer.pad - layer.kernel + 1
        else:
            h, w = (h - layer.size) // layer.stride + 1, (w - layer.size) // layer.stride + 1
        if h < 1 or w < 1:
            msg = f"layers[{i}] ({layer.type}) does not fit its input: output {h}x{w}"
            raise ValueError(msg)
        shapes.append((c, h, w))
    if not layers or not isinstance(layers[-1], SdnnConv):
        msg = "the last layer must be a conv layer (its potentials are globally max-pooled into the features)"
        raise ValueError(msg)
    return shapes
