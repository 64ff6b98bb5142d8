"""The layers of an STDP network as typed, frozen configs: Thiele's rule, and the union of every rule.

A config's ``layers`` table is a list of these, each chosen by its ``type`` key ("conv", "pool", "fc")
and, for conv and fc, its ``rule`` key ("thiele", the default, or "trace") through the one config
loader (``pipeline.config.build_params``), which reports an unknown, missing or ill-typed key with its
path (``[nodes.stdp] layers[1]: unknown key 'mapz'``) and a key of another rule as such
(``layers[0]: key 'tau_m_us' is a parameter of rule 'trace', not of this layer's rule 'thiele'``).
Each rule's params are one class per layer kind, built on the rule-neutral ``ConvShape`` / ``FcShape``
(``nodes.stdp.shapes``); ``LayerParams`` lists them, the default rule first, and
``nodes.stdp.rules.registry`` maps a rule's name to how its layers are built and run.

Learning rates: the thesis fixes ``a_plus = -8 * a_minus`` and ``beta_plus = 3`` (Table 3.1 and the
text of 3.2.2) but not the magnitudes. The defaults here (conv ``a_minus = -0.005``, fc
``a_minus = -0.002``) are a starting point meant to be tuned (thesis 3.3.1: performance is stable over
about an order of magnitude of learning rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from typing_extensions import override

from .rules.trace.params import TraceConvParams, TraceFcParams
from .shapes import MAX_CHANNELS, ConvShape, FcShape, PoolParams, output_shape

__all__ = [
    "MAX_CHANNELS",
    "ConvParams",
    "ConvShape",
    "FcParams",
    "FcShape",
    "LayerParams",
    "PoolParams",
    "output_shape",
]


@dataclass(frozen=True, kw_only=True)
class _ThieleRule:
    """Thiele's rule (thesis ch. 3) as convolutional and fully connected layers share it (each subclass
    sets its own defaults)."""

    rule: Literal["thiele"] = "thiele"
    """The learning rule: Thiele's non-leaky two-accumulator neurons and eq. 3.4 (the default)."""

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
class ConvParams(_ThieleRule, ConvShape):
    """A convolutional layer learning by Thiele's rule (thesis 3.2.3 and Table 3.1)."""

    a_minus: float = -0.005
    w_init_mean: float = 0.8

    @override
    def __post_init__(self) -> None:
        ConvShape.__post_init__(self)
        _ThieleRule.__post_init__(self)


@dataclass(frozen=True, kw_only=True)
class FcParams(_ThieleRule, FcShape):
    """A fully connected layer learning by Thiele's rule over the flattened ``(C, H, W)`` input (thesis
    3.2.3). A learning spike always resets every learning accumulator of the layer (it is one map)."""

    a_minus: float = -0.002
    w_init_mean: float = 0.67

    @override
    def __post_init__(self) -> None:
        FcShape.__post_init__(self)
        _ThieleRule.__post_init__(self)


#: Every layer a config can name. Within a layer kind the default rule comes first: a table without a
#: ``rule`` key is built as the first member of its ``type`` (see ``pipeline.config``). A new rule adds
#: its conv and fc params classes here (and its builder to ``nodes.stdp.rules.registry``).
LayerParams = ConvParams | PoolParams | FcParams | TraceConvParams | TraceFcParams
