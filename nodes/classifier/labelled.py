"""What every readout of top-layer spikes shares: the label queue, the input checks, the output records.

Every readout (``nodes.classifier.readout``) has one input contract:

* ``add_labels(labels)`` queues ``LABEL_DTYPE`` records ("from ``t`` on the scene shows ``label``";
  ``train`` = 1: the classifier may learn from it, 0: evaluation only);
* ``process(spikes)`` consumes ``SPIKE_DTYPE`` spikes (``c`` = presynaptic top-layer neuron) in order
  and, before each spike, applies every queued label with ``label.t <= spike.t``. Labels later than
  every spike seen so far stay queued, so labels and spikes may be fed in any interleaving of batches
  that respects time order (a label is added before any spike at or after its ``t`` is processed) and
  the outputs and learned state are identical whatever the batching;
* ``flush()`` applies the remaining labels and closes the last segment (end of stream).

Every label record closes the current *segment* and opens a new one. At a segment's end one decision
record (``prediction_dtype``, ``decision = 1``, ``truth`` = the segment's label, ``train`` = its flag,
``t`` = the time the next label starts, or the last timestamp seen on ``flush``) is emitted.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nodes.classifier import kernel
from nodes.classifier.kernel import Columns, Labels, Spikes
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE, prediction_dtype

log = logging.getLogger(__name__)


class LabelledStream:
    """Label queue, input validation, output assembly and state shared by every readout; a readout adds its
    state arrays (``_state_arrays``, each kept as ``self._<name>``) and its kernel call (``_kernel``)."""

    _state_arrays: tuple[str, ...] = ()

    def __init__(self, n_classes: int, n_inputs: int) -> None:
        self.n_classes = n_classes
        self.n_inputs = n_inputs
        self.out_dtype = prediction_dtype(n_classes)
        self.learning = True
        self._queue = np.zeros(0, dtype=LABEL_DTYPE)
        self._istate = kernel.new_istate()
        self._late_labels = 0

    # -- learning switch -------------------------------------------------------------------------
    def freeze(self) -> None:
        """Stop learning (weights/counts and E stay as they are); decisions continue."""
        self.learning = False

    def unfreeze(self) -> None:
        """Resume learning from training segments."""
        self.learning = True

    # -- input -----------------------------------------------------------------------------------
    def add_labels(self, labels: np.ndarray) -> None:
        """Queue label records; they take effect before the first spike with ``t >= label.t``."""
        labels = np.asarray(labels)
        if labels.dtype != LABEL_DTYPE:
            msg = f"labels must have LABEL_DTYPE {LABEL_DTYPE}, got {labels.dtype}"
            raise ValueError(msg)
        if labels.ndim != 1:
            msg = f"labels must be one-dimensional, got shape {labels.shape}"
            raise ValueError(msg)
        if len(labels) == 0:
            return
        lab = labels["label"]
        if lab.min() < -1 or lab.max() >= self.n_classes:
            bad = lab[(lab < -1) | (lab >= self.n_classes)][0]
            msg = f"label {bad} outside [-1, {self.n_classes - 1}]"
            raise ValueError(msg)
        if labels["train"].max() > 1:
            msg = f"train flag must be 0 or 1, got {labels['train'].max()}"
            raise ValueError(msg)
        t = labels["t"]
        if np.any(np.diff(t) < 0):
            msg = "label timestamps must be non-decreasing within a batch"
            raise ValueError(msg)
        prev = self._queue["t"][-1] if len(self._queue) else self._istate[kernel.I_LAST_LABEL_T]
        if t[0] < prev:
            msg = f"label t={t[0]} is earlier than the previous label t={prev}"
            raise ValueError(msg)
        late = int(np.count_nonzero(t <= self._istate[kernel.I_LAST_T]))
        if late:
            # Spikes after these labels were already processed under the old label: the results now
            # depend on batching. Apply them at once and say so.
            self._late_labels += late
            log.warning("%d label record(s) arrived after spikes later than them; applied late", late)
        self._queue = np.concatenate([self._queue, labels])

    def _check_spikes(self, spikes: np.ndarray) -> np.ndarray:
        spikes = np.asarray(spikes)
        if spikes.dtype != SPIKE_DTYPE:
            msg = f"spikes must have SPIKE_DTYPE {SPIKE_DTYPE}, got {spikes.dtype}"
            raise ValueError(msg)
        if spikes.ndim != 1:
            msg = f"spikes must be one-dimensional, got shape {spikes.shape}"
            raise ValueError(msg)
        if len(spikes) == 0:
            return spikes
        c = spikes["c"]
        if int(c.max()) >= self.n_inputs:
            msg = f"spike channel c={int(c.max())} >= n_inputs={self.n_inputs}"
            raise ValueError(msg)
        t = spikes["t"]
        if np.any(np.diff(t) < 0):
            msg = "spike timestamps must be non-decreasing within a batch"
            raise ValueError(msg)
        last = self._istate[kernel.I_LAST_T]
        if t[0] < last:
            msg = f"spike t={t[0]} is earlier than the last spike processed (t={last})"
            raise ValueError(msg)
        return spikes

    def _buffers(self, n: int) -> tuple[np.ndarray, ...]:
        return (
            np.empty(n, np.int64),
            np.empty(n, np.int32),
            np.empty(n, np.int32),
            np.empty(n, np.uint8),
            np.empty(n, np.uint8),
            np.empty((n, self.n_classes), np.float64),
        )

    def _assemble(self, bufs: tuple[np.ndarray, ...], n: int) -> np.ndarray:
        out = np.zeros(n, dtype=self.out_dtype)  # zeros: padding bytes are deterministic
        for name, buf in zip(("t", "label", "truth", "decision", "train", "scores"), bufs, strict=True):
            out[name] = buf[:n]
        return out

    def process(self, spikes: np.ndarray) -> np.ndarray:
        """Consume a batch of spikes; returns the prediction records it caused, in time order."""
        return self._run(self._check_spikes(spikes), final=False)

    def flush(self) -> np.ndarray:
        """End of stream: apply every queued label and close the last segment."""
        return self._run(np.zeros(0, dtype=SPIKE_DTYPE), final=True)

    def _run(self, spikes: np.ndarray, final: bool) -> np.ndarray:
        q = self._queue
        bufs = self._buffers(len(spikes) + len(q) + 1)
        used, n = self._kernel(
            (np.ascontiguousarray(spikes["t"]), np.ascontiguousarray(spikes["c"]).astype(np.int64)),
            (
                np.ascontiguousarray(q["t"]),
                np.ascontiguousarray(q["label"]).astype(np.int64),
                np.ascontiguousarray(q["train"]).astype(np.int64),
            ),
            final,
            bufs,
        )
        self._queue = q[used:].copy()
        return self._assemble(bufs, n)

    def _kernel(self, spikes: Spikes, labels: Labels, final: bool, bufs: Columns) -> tuple[int, int]:
        """Run the readout's kernel over ``spikes`` = ``(t, c)`` and the queued ``labels`` = ``(t, label,
        train)``; returns ``(labels used, records written)``."""
        raise NotImplementedError

    # -- state -----------------------------------------------------------------------------------
    @property
    def counters(self) -> dict[str, int]:
        """Running counters (inputs, outputs, segments, updates, resets, late labels)."""
        s = self._istate
        return {
            "inputs": int(s[kernel.I_N_INPUTS]),
            "outputs": int(s[kernel.I_N_OUTPUTS]),
            "segments": int(s[kernel.I_N_SEGMENTS]),
            "updates": int(s[kernel.I_N_UPDATES]),
            "resets": int(s[kernel.I_N_RESETS]),
            "late_labels": self._late_labels,
        }

    def state_dict(self) -> dict[str, Any]:
        """Every piece of state (copies), so that restore + continue is bit-identical."""
        state: dict[str, Any] = {name: getattr(self, "_" + name).copy() for name in self._state_arrays}
        state.update(
            kind=type(self).__name__,
            n_classes=self.n_classes,
            n_inputs=self.n_inputs,
            istate=self._istate.copy(),
            queue=self._queue.copy(),
            learning=self.learning,
            late_labels=self._late_labels,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; raises ValueError when it does not fit this object."""
        kind = str(np.asarray(state.get("kind")))  # a 0-d array once it went through a checkpoint file
        if kind != type(self).__name__:
            msg = f"it holds the state of a {kind}, not of a {type(self).__name__}"
            raise ValueError(msg)
        if state.get("n_classes") != self.n_classes or state.get("n_inputs") != self.n_inputs:
            msg = (
                f"state has n_classes={state.get('n_classes')}, n_inputs={state.get('n_inputs')}; "
                f"this object has {self.n_classes}, {self.n_inputs}"
            )
            raise ValueError(msg)
        for name in self._state_arrays:
            cur = getattr(self, "_" + name)
            new = np.asarray(state[name])
            if new.shape != cur.shape or new.dtype != cur.dtype:
                msg = f"state {name!r} has shape {new.shape} {new.dtype}, expected {cur.shape} {cur.dtype}"
                raise ValueError(msg)
            setattr(self, "_" + name, new.copy())
        istate = np.asarray(state["istate"], dtype=np.int64)
        if istate.shape != (kernel.ISTATE_SIZE,):
            msg = f"state 'istate' has shape {istate.shape}, expected ({kernel.ISTATE_SIZE},)"
            raise ValueError(msg)
        queue = np.asarray(state["queue"])
        if queue.dtype != LABEL_DTYPE:
            msg = f"state 'queue' has dtype {queue.dtype}, expected LABEL_DTYPE"
            raise ValueError(msg)
        self._istate = istate.copy()
        self._queue = queue.copy()
        self.learning = bool(state["learning"])
        self._late_labels = int(state["late_labels"])
