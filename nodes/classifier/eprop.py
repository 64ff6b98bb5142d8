"""The e-prop readout: LIF output neurons on top-layer spikes, learning online by surrogate gradients.

Not in the thesis: the readout of e-prop (Bellec et al. 2020) and SuperSpike, made event-driven. Each
class has a leaky integrate-and-fire neuron; each input spike decays every trace exactly over the time
since the previous spike (``exp(-dt / tau)``, times from the stream's timestamps), adds the neuron's weight
for that input to its membrane and fires it at the threshold (reset by subtraction). Each synapse keeps
an eligibility trace, the low-pass filtered presynaptic trace times a surrogate derivative of the
membrane; the error between each neuron's filtered output spikes and the current label's target times
that trace moves the weight at every input spike of a training segment. Memory is constant (three
weight-sized arrays), there is no window and nothing is replayed. The exact equations, and in what sense
the update is the exact gradient, are in ``nodes.classifier.eprop_kernel``.

Segments and records as every readout (``nodes.classifier.labelled``): a running prediction on every input
spike that makes an output neuron fire, and one decision per labelled segment, ``argmax S`` where ``S``
sums the neurons' free membranes (their input integrated without resets) over the segment's spikes, -1
when the segment received none. The neurons run on the weights as the segment opened, so a decision is
made before its own label teaches (as the supervised classifier's scores are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from typing_extensions import override

from . import eprop_kernel
from .kernel import Columns, Labels, Spikes
from .labelled import LabelledStream
from .readout import _check_sizes


@dataclass(frozen=True, kw_only=True)
class EpropRule:
    """The e-prop readout's neurons and learning rule (``[nodes.classifier.eprop]``); defaults ours, chosen
    on held-out training data (docs/experiments/eprop.md)."""

    #: membrane and presynaptic-trace time constant, microseconds (> 0)
    tau_mem_us: float = 100_000.0
    #: time constant of the filtered output spikes and of the eligibility traces, microseconds (> 0)
    tau_out_us: float = 100_000.0
    #: firing threshold of the output neurons, in weight units (> 0)
    threshold: float = 1.0
    #: steepness of the surrogate derivative 1 / (1 + sharpness |u - threshold| / threshold)^2 (> 0)
    sharpness: float = 1.0
    #: learning rate (>= 0)
    eta: float = 0.001
    #: what the labelled class's filtered output should reach (the others: 0), in spikes (> 0)
    target: float = 1.0
    #: standard deviation of the initial weights, drawn N(0, w_std) with the seed (>= 0)
    w_std: float = 0.01

    def __post_init__(self) -> None:
        for name in ("tau_mem_us", "tau_out_us", "threshold", "sharpness", "target"):
            if not getattr(self, name) > 0:
                msg = f"{name} must be > 0, got {getattr(self, name)}"
                raise ValueError(msg)
        for name in ("eta", "w_std"):
            if not getattr(self, name) >= 0:
                msg = f"{name} must be >= 0, got {getattr(self, name)}"
                raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class EpropParams:
    """Sizes, seed and rule of one e-prop readout."""

    #: number of classes = number of output neurons
    n_classes: int = 10
    #: number of top-layer neurons; spike ``c`` must be below it
    n_inputs: int = 1024
    #: seed of the weight initialisation (numpy default_rng)
    seed: int = 0
    #: the neurons and the learning rule
    rule: EpropRule = EpropRule()

    def __post_init__(self) -> None:
        _check_sizes(self.n_classes, self.n_inputs)


class EpropReadout(LabelledStream):
    """LIF output neurons learning online by e-prop (semantics in the module docstring)."""

    _state_arrays = ("w", "w_fwd", "elig", "x", "active", "u", "r", "y", "seg_scores")

    def __init__(self, params: EpropParams) -> None:
        super().__init__(params.n_classes, params.n_inputs)
        self.params = params
        rule = params.rule
        rng = np.random.default_rng(params.seed)
        shape = (params.n_classes, params.n_inputs)
        self._w = rng.normal(0.0, rule.w_std, size=shape) if rule.w_std > 0 else np.zeros(shape)
        self._w_fwd = self._w.copy()
        self._elig = np.zeros(shape)
        self._x = np.zeros(params.n_inputs)
        self._active = np.zeros(2 * params.n_inputs + 1, np.int64)
        self._u = np.zeros(params.n_classes)
        self._r = np.zeros(params.n_classes)
        self._y = np.zeros(params.n_classes)
        self._seg_scores = np.zeros(params.n_classes)
        consts = np.zeros(eprop_kernel.N_CONSTS)
        consts[eprop_kernel.C_TAU_MEM] = rule.tau_mem_us
        consts[eprop_kernel.C_TAU_OUT] = rule.tau_out_us
        consts[eprop_kernel.C_THETA] = rule.threshold
        consts[eprop_kernel.C_SHARPNESS] = rule.sharpness
        consts[eprop_kernel.C_ETA] = rule.eta
        consts[eprop_kernel.C_TARGET] = rule.target
        self._consts = consts

    @property
    def weights(self) -> np.ndarray:
        """A copy of the learning weights, shape (n_classes, n_inputs)."""
        return self._w.copy()

    @property
    def potential(self) -> np.ndarray:
        """A copy of the output neurons' membranes (after the last spike's reset)."""
        return self._u.copy()

    @property
    def output(self) -> np.ndarray:
        """A copy of the filtered output spikes, the quantity the loss compares with the target."""
        return self._y.copy()

    @override
    def unfreeze(self) -> None:
        # The eligibility traces were not kept while frozen: start them afresh rather than from stale values.
        if not self.learning:
            self._elig[:] = 0.0
        super().unfreeze()

    @override
    def _kernel(self, spikes: Spikes, labels: Labels, final: bool, bufs: Columns) -> tuple[int, int]:
        state = (
            self._w,
            self._w_fwd,
            self._elig,
            self._x,
            self._active,
            self._u,
            self._r,
            self._y,
            self._seg_scores,
            self._consts,
            self.learning,
        )
        return eprop_kernel.eprop_run(spikes, labels, state, self._istate, final, bufs)
