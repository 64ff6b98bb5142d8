"""The layer tables of the trace rule: LIF neurons, exponential pre/post traces, pair STDP.

Times are microseconds, as the events' ``t``. Potentials are in weight units: with a delta synapse
(``tau_syn_us = 0``) an input of weight ``w`` raises ``v`` by ``w``; with a current-based synapse the
same input adds ``w / tau_syn`` to the current, whose integral (no leak) also raises ``v`` by ``w``.
Unlike Thiele's rule this one has time constants, so it is *not* timescale invariant: replaying a
stream faster or slower changes what it learns. Defaults are a starting point, tuned in
``configs/mnist-trace.toml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from typing_extensions import override

from nodes.stdp.shapes import ConvShape, FcShape


@dataclass(frozen=True, kw_only=True)
class _TraceRule:
    """The trace rule's parameters, shared by its conv and fc layers."""

    rule: Literal["trace"] = "trace"
    """The learning rule: LIF neurons and trace-based pair STDP (the key selects this table)."""
    th_learn: float = 8.0
    """Threshold of the learning neurons' potential, in weight units (> 0)."""
    th_inf: float = 8.0
    """Threshold of the inference neurons' potential, whose spikes the next layer sees (> 0)."""
    v_reset: float = 0.0
    """Potential after a neuron's own spike, in weight units (< both thresholds; rest is 0)."""
    tau_m_us: float = 20_000.0
    """Membrane time constant, µs (> 0)."""
    tau_syn_us: float = 0.0
    """Synaptic current time constant, µs (>= 0; 0 = delta synapse, an input jumps ``v`` at once)."""
    t_ref_us: float = 0.0
    """Refractory period after a neuron's own spike, µs (>= 0): ``v`` is held at ``v_reset``."""
    tau_pre_us: float = 20_000.0
    """Time constant of the presynaptic trace (one per input position), µs (> 0)."""
    tau_post_us: float = 20_000.0
    """Time constant of the postsynaptic trace (one per learning neuron), µs (> 0)."""
    a_ltp: float = 0.01
    """Potentiation per post spike, times the pre trace, in weight units (>= 0)."""
    a_ltd: float = 0.0105
    """Depression per pre spike, times the post trace, in weight units (>= 0)."""
    x_tar: float = 0.0
    """Target pre trace (>= 0): a post spike changes each synapse by ``a_ltp * (x_pre - x_tar)``, so the
    synapses of inputs that were silent are depressed (Diehl & Cook 2015's offset; 0 = plain pair STDP,
    where a silent input's weight never changes)."""
    theta_plus: float = 0.0
    """Adaptive threshold (homeostasis, Diehl & Cook 2015), in weight units (>= 0): each learning spike
    raises its neuron's threshold offset ``theta`` by this much; the learning threshold is
    ``th_learn + theta``. 0 (the default) = no adaptive threshold, results as without the option."""
    tau_theta_us: float = 10_000_000.0
    """Time constant of ``theta``'s exponential decay, µs (> 0), computed exactly from time differences.
    It decays with learning off too (only learning spikes raise it)."""
    theta_inf: bool = False
    """Whether the inference threshold also adds the neuron's ``theta`` (``th_inf + theta``); false:
    the inference neurons fire on their weights alone."""
    update: Literal["additive", "multiplicative"] = "additive"
    """``additive``: ``dw = a * trace`` clipped to [0, 1]; ``multiplicative`` (soft bounds): an increase
    scaled by ``1 - w``, a decrease by ``w``."""
    wta_learn: bool = True
    """Whether a learning spike resets its map and the positions within ``r_learn`` (Thiele's WTA);
    false: only the neuron itself resets (used to compare with Brian2)."""
    w_init_mean: float = 0.5
    """Mean of the initial weights, drawn from N(mean, std) and clipped to [0, 1] (finite)."""
    w_init_std: float = 0.1
    """Standard deviation of the initial weights (>= 0)."""

    def __post_init__(self) -> None:
        for name in ("th_learn", "th_inf", "tau_m_us", "tau_pre_us", "tau_post_us", "tau_theta_us"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                msg = f"{name} must be a finite number > 0, got {value!r}"
                raise ValueError(msg)
        for name in ("tau_syn_us", "t_ref_us", "a_ltp", "a_ltd", "x_tar", "theta_plus", "w_init_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                msg = f"{name} must be a finite number >= 0, got {value!r}"
                raise ValueError(msg)
        if not (math.isfinite(self.v_reset) and self.v_reset < min(self.th_learn, self.th_inf)):
            msg = f"v_reset must be finite and below both thresholds, got {self.v_reset!r}"
            raise ValueError(msg)
        if not math.isfinite(self.w_init_mean):
            msg = f"w_init_mean must be finite, got {self.w_init_mean!r}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class TraceConvParams(_TraceRule, ConvShape):
    """A convolutional layer learning by the trace rule (shared kernels, WTA radii as Thiele's)."""

    @override
    def __post_init__(self) -> None:
        ConvShape.__post_init__(self)
        _TraceRule.__post_init__(self)


@dataclass(frozen=True, kw_only=True)
class TraceFcParams(_TraceRule, FcShape):
    """A fully connected layer learning by the trace rule (one map: a learning spike's WTA is global)."""

    @override
    def __post_init__(self) -> None:
        FcShape.__post_init__(self)
        _TraceRule.__post_init__(self)
