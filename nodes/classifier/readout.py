"""Event-based classifiers on top-layer spikes: the thin Python side of ``kernel.py``.

The input contract every readout keeps (labels queued, spikes in time order, one decision record per
labelled segment) is written in ``nodes.classifier.labelled``.

``SupervisedClassifier`` (thesis 3.3.2, eqs. 3.6/3.7), exact semantics:

* one non-leaky integrate-and-fire neuron per class, weights ``w[i, j]`` (float64) drawn once from
  ``N(w_mean, w_std)`` with the seed (the thesis gives no initialisation; with zero weights and E = 0 no
  neuron would ever fire, so the default is ``N(0.5, 0.1)``);
* on each input spike from neuron ``j``: if learning is on and the segment is a training segment with a
  known label, ``w[i, j] += eta * E_i`` for every class ``i`` (eq. 3.6); then ``V_i += w[i, j]`` and
  the segment score ``S_i += w_open[i, j]`` for every ``i``, where ``w_open`` are the weights as the
  segment opened (the segment's own label steers ``E`` and so ``w`` within it: a score summing ``w``
  would grade the classifier on what it was just told, near 100 % even untrained, instead of predicting
  first, then learning); every neuron with ``V_i >= threshold`` fires
  and is set to 0 (all that crossed fire, in class order);
* for each firing neuron ``k`` (class order), in a training segment with a known label while learning
  is on: ``E_i <- m * E_i + R_i - [i == k]`` for all ``i`` (eq. 3.7; ``R`` one-hot of the label).
  Outside such segments ``E`` is left untouched (there is no target to compare with);
* a *training* label record whose ``(label, train)`` differs from the current segment's resets
  ``E`` and ``V`` to 0 (thesis: "every time a new class is presented"). Evaluation records never reset
  anything and never teach: the classifier does not see them, they only delimit decision segments;
* on every input spike that makes at least one class neuron fire, one running prediction record
  (``decision = 0``, ``truth = -1``, ``label = argmax S``, ``scores = S``, ``train`` = segment flag);
* the segment decision is ``argmax S`` ("strongest response" = the total weighted input integrated
  during the segment), -1 when the segment received no input. Ties go to the lowest class index.
  The thesis's test rule is different: most classifier spikes, ties by integration value. With the
  N-MNIST network the top layer sends only ~14 spikes per sample, so class neurons fire a few times at
  most and counts tie or mislead: on saccade-MNIST (same recorded top-layer stream, learn on
  train[:50000], judge train[50000:]) the count rule scores 81.5 % against 93.4 % for ``argmax S``.

``LabelAssignmentReadout`` (thesis 3.3.1, the MNIST spike-count classifier), kept online:

* per top neuron a count of how often it was the most active neuron of a training segment of each
  class; its preferred label is the most counted class (lowest on ties, -1 while never counted);
* at a segment's end the prediction is the preferred label of the neuron that spiked most in the
  segment (lowest index on ties; -1 when no spike); then, if learning is on and the segment is a
  training segment with a known label, that neuron's count for the label is incremented (predict first,
  then learn: prequential). ``scores[k]`` = segment spikes of all neurons whose preferred label is
  ``k`` (so ``argmax scores`` may differ from the decision, which follows the single most active neuron);
* it emits decision records only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from nodes.classifier import kernel
from nodes.classifier.kernel import Columns, Labels, Spikes

from .labelled import LabelledStream


def _check_sizes(n_classes: int, n_inputs: int) -> None:
    """The checks every readout's parameters share."""
    if n_classes < 1:
        msg = f"n_classes must be >= 1, got {n_classes}"
        raise ValueError(msg)
    if not 1 <= n_inputs <= 65536:
        msg = f"n_inputs must be in [1, 65536] (spike c is uint16), got {n_inputs}"
        raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class SupervisedParams:
    """Parameters of the supervised event-based classifier (thesis 3.3.2, eqs. 3.5-3.7).

    The thesis gives no values for the classifier; the defaults below are ours.
    """

    #: number of classes = number of classifier neurons (N-MNIST: 10, thesis 3.3.2)
    n_classes: int = 10
    #: number of presynaptic (top-layer) neurons; spike ``c`` must be below it (thesis: 1024 FC neurons)
    n_inputs: int = 1024
    #: firing threshold of the class neurons, in weight units (> 0)
    threshold: float = 10.0
    #: learning rate eta of eq. 3.6 (>= 0)
    eta: float = 0.01
    #: memory m of eq. 3.7, in [0, 1]
    m: float = 0.9
    #: mean of the initial weights (normal distribution)
    w_mean: float = 0.5
    #: standard deviation of the initial weights (>= 0)
    w_std: float = 0.1
    #: seed of the weight initialisation (numpy default_rng)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_sizes(self.n_classes, self.n_inputs)
        if not self.threshold > 0:
            msg = f"threshold must be > 0, got {self.threshold}"
            raise ValueError(msg)
        if not self.eta >= 0:
            msg = f"eta must be >= 0, got {self.eta}"
            raise ValueError(msg)
        if not 0.0 <= self.m <= 1.0:
            msg = f"m must be in [0, 1], got {self.m}"
            raise ValueError(msg)
        if not self.w_std >= 0:
            msg = f"w_std must be >= 0, got {self.w_std}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class ReadoutParams:
    """Parameters of the label-assignment spike-count readout (thesis 3.3.1)."""

    #: number of classes
    n_classes: int = 10
    #: number of top-layer neurons; spike ``c`` must be below it
    n_inputs: int = 1024

    def __post_init__(self) -> None:
        _check_sizes(self.n_classes, self.n_inputs)


class SupervisedClassifier(LabelledStream):
    """The event-based supervised classifier of thesis 3.3.2 (semantics in the module docstring)."""

    _state_arrays = ("w", "w_open", "e", "v", "seg_scores")

    def __init__(self, params: SupervisedParams) -> None:
        super().__init__(params.n_classes, params.n_inputs)
        self.params = params
        rng = np.random.default_rng(params.seed)
        self._w = rng.normal(params.w_mean, params.w_std, size=(params.n_classes, params.n_inputs))
        self._w_open = self._w.copy()
        self._e = np.zeros(params.n_classes)
        self._v = np.zeros(params.n_classes)
        self._seg_scores = np.zeros(params.n_classes)

    @property
    def weights(self) -> np.ndarray:
        """A copy of the weights, shape (n_classes, n_inputs)."""
        return self._w.copy()

    @override
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "w_open" not in state and "w" in state:  # written before the scores used the segment's opening weights
            state = {**state, "w_open": state["w"]}
        super().load_state_dict(state)

    @property
    def error(self) -> np.ndarray:
        """A copy of the error terms E."""
        return self._e.copy()

    @property
    def potential(self) -> np.ndarray:
        """A copy of the integration variables V."""
        return self._v.copy()

    @override
    def _kernel(self, spikes: Spikes, labels: Labels, final: bool, bufs: Columns) -> tuple[int, int]:
        p = self.params
        state = (
            self._w,
            self._w_open,
            self._e,
            self._v,
            self._seg_scores,
            float(p.threshold),
            float(p.eta),
            float(p.m),
            self.learning,
        )
        return kernel.supervised_run(spikes, labels, state, self._istate, final, bufs)


class LabelAssignmentReadout(LabelledStream):
    """The online label-assignment spike-count readout of thesis 3.3.1 (see module docstring)."""

    _state_arrays = ("counts", "seg_counts", "seg_scores")

    def __init__(self, params: ReadoutParams) -> None:
        super().__init__(params.n_classes, params.n_inputs)
        self.params = params
        self._counts = np.zeros((params.n_inputs, params.n_classes), np.int64)
        self._seg_counts = np.zeros(params.n_inputs, np.int64)
        self._seg_scores = np.zeros(params.n_classes)

    @property
    def assignment_counts(self) -> np.ndarray:
        """A copy of the label counts, shape (n_inputs, n_classes)."""
        return self._counts.copy()

    def forget_assignments(self) -> None:
        """Start labelling anew (thesis 3.3.1 labels the top neurons in a pass after training)."""
        self._counts[:] = 0

    @property
    def preferred_labels(self) -> np.ndarray:
        """Preferred label of each top neuron (-1 while never assigned)."""
        pref: np.ndarray = np.argmax(self._counts, axis=1).astype(np.int64)
        pref[self._counts.max(axis=1) == 0] = -1
        return pref

    @override
    def _kernel(self, spikes: Spikes, labels: Labels, final: bool, bufs: Columns) -> tuple[int, int]:
        state = (self._counts, self._seg_counts, self._seg_scores, self.learning)
        return kernel.readout_run(spikes, labels, state, self._istate, final, bufs)


@dataclass(frozen=True, kw_only=True)
class DeltaParams:
    """Parameters of the delta-rule readout (normalised least mean squares on segment spike counts)."""

    #: number of classes
    n_classes: int = 10
    #: number of top-layer neurons; spike ``c`` must be below it
    n_inputs: int = 1024
    #: step of the normalised delta rule, in (0, 2) (0.3 chosen on saccade-MNIST validation digits)
    eta: float = 0.3

    def __post_init__(self) -> None:
        _check_sizes(self.n_classes, self.n_inputs)
        if not 0.0 < self.eta < 2.0:
            msg = f"eta of the normalised delta rule must be in (0, 2), got {self.eta}"
            raise ValueError(msg)


class DeltaReadout(LabelledStream):
    """A linear readout of the top layer's spike counts per segment, learnt online by the normalised delta
    rule (least mean squares; see ``kernel.delta_run``). Not the thesis's classifier: one step per labelled
    segment towards the least-squares readout, where eqs. 3.5-3.7 settle elsewhere (benchmarks/RESULTS.md)."""

    _state_arrays = ("w", "seg_counts", "seg_scores")

    def __init__(self, params: DeltaParams) -> None:
        super().__init__(params.n_classes, params.n_inputs)
        self.params = params
        self._w = np.zeros((params.n_classes, params.n_inputs))
        self._seg_counts = np.zeros(params.n_inputs, np.int64)
        self._seg_scores = np.zeros(params.n_classes)

    @property
    def weights(self) -> np.ndarray:
        """A copy of the weights, shape (n_classes, n_inputs)."""
        return self._w.copy()

    @override
    def _kernel(self, spikes: Spikes, labels: Labels, final: bool, bufs: Columns) -> tuple[int, int]:
        state = (self._w, self._seg_counts, self._seg_scores, float(self.params.eta), self.learning)
        return kernel.delta_run(spikes, labels, state, self._istate, final, bufs)
