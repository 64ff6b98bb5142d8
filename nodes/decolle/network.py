"""A stack of DECOLLE layers on a spike stream: label walk, input checks, state; each layer learns locally.

Not in the thesis: DECOLLE (Kaiser, Mostafa and Neftci 2020), made event-driven. Every layer is a fully
connected or convolution layer of LIF neurons with a fixed random readout ``G`` to the classes (seeded,
never learnt)
and a local loss, the squared error of that readout of its filtered output spikes against the current
label's one-hot target. Each layer learns at every one of its input spikes from eligibility traces and a
surrogate derivative (``nodes.decolle.kernel``), from its own loss only: the spikes it receives from the
layer below are its input, not something it differentiates through, so no error crosses a layer.

Labels as the readouts take them (``nodes.classifier.labelled``): a label record applies before the first
spike at or after its ``t``; it closes the segment (a training segment hands the learnt weights ``w`` to
the neurons, ``w_fwd``) and starts the next with every layer at rest: the reset per labelled segment the
config states (``reset = "label"``). Training segments with a known label teach; the others only run.
Outputs (the top layer's spikes, ``c`` = neuron) and learnt state are identical whatever the batching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE

from . import kernel


@dataclass(frozen=True, kw_only=True)
class DecolleLayer:
    """One DECOLLE layer (an entry of ``layers``); defaults ours."""

    #: the layer type: "fc" (fully connected, ``neurons``) or "conv" (``maps`` kernels of ``kernel`` x
    #: ``kernel`` over every input channel, stride 1, no padding; its neurons: maps x positions)
    type: Literal["fc", "conv"] = "fc"
    #: the layer's learning signal: "readout" (DECOLLE: the error of its fixed random readout of its
    #: output) or "random" (direct random target projection: the fixed random projection of the target)
    feedback: Literal["readout", "random"] = "readout"
    #: number of LIF neurons of an fc layer (>= 1)
    neurons: int = 100
    #: maps and kernel side of a conv layer (>= 1 each)
    maps: int = 8
    kernel: int = 5
    #: membrane and presynaptic-trace time constant, microseconds (> 0)
    tau_mem_us: float = 20_000.0
    #: time constant of the filtered output spikes and of the eligibility traces, microseconds (> 0)
    tau_out_us: float = 20_000.0
    #: firing threshold, in weight units (> 0)
    threshold: float = 1.0
    #: steepness of the surrogate derivative 1 / (1 + sharpness |u - threshold| / threshold)^2 (> 0)
    sharpness: float = 1.0
    #: learning rate (>= 0)
    eta: float = 0.001
    #: what the labelled class's local readout should reach (the others: 0) (> 0)
    target: float = 1.0
    #: weight of the regulariser ``quiet * relu(floor - u)`` per neuron and input spike, which lifts a
    #: membrane that sinks below ``floor`` (DECOLLE's; keeps neurons from falling silent) (>= 0, 0 = off)
    quiet: float = 0.0
    #: membrane (weight units) below which ``quiet`` lifts (any value below ``threshold``)
    floor: float = 0.0
    #: weight of the regulariser ``busy * relu(u - threshold)`` per neuron and input spike, which
    #: penalises firing (DECOLLE's; keeps the layer sparse) (>= 0, 0 = off)
    busy: float = 0.0
    #: mean and standard deviation of the initial weights, drawn N(w_mean, w_std) with the seed (w_std >= 0)
    w_mean: float = 0.0
    w_std: float = 0.1

    def __post_init__(self) -> None:
        if self.neurons < 1 or self.neurons > 65535:
            msg = f"neurons must be in 1 .. 65535, got {self.neurons}"
            raise ValueError(msg)
        for name in ("tau_mem_us", "tau_out_us", "threshold", "sharpness", "target"):
            if not getattr(self, name) > 0:
                msg = f"{name} must be > 0, got {getattr(self, name)}"
                raise ValueError(msg)
        if self.type not in ("fc", "conv"):
            msg = f"type must be 'fc' or 'conv', got {self.type!r}"
            raise ValueError(msg)
        if self.maps < 1 or self.kernel < 1:
            msg = f"maps and kernel must be >= 1, got {self.maps}, {self.kernel}"
            raise ValueError(msg)
        if self.feedback not in ("readout", "random"):
            msg = f"feedback must be 'readout' or 'random', got {self.feedback!r}"
            raise ValueError(msg)
        if not self.floor < self.threshold:
            msg = f"floor must be < threshold ({self.threshold}), got {self.floor}"
            raise ValueError(msg)
        for name in ("eta", "w_std", "quiet", "busy"):
            if not getattr(self, name) >= 0:
                msg = f"{name} must be >= 0, got {getattr(self, name)}"
                raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class DecolleParams:
    """Sizes, seed and layers of one DECOLLE stack."""

    #: number of input channels; spike ``c`` must be below it
    n_inputs: int
    #: number of classes (rows of every local readout)
    n_classes: int = 10
    #: layers bottom up (at least one)
    layers: tuple[DecolleLayer, ...] = (DecolleLayer(),)
    #: seed of the weights and the fixed local readouts (layer ``l`` draws from ``default_rng((seed, l))``)
    seed: int = 0
    #: the inputs as (channels, height, width), channel ``(c * height + y) * width + x``: what a conv layer
    #: convolves (default: ``(n_inputs, 1, 1)``)
    input_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.n_inputs < 1 or self.n_classes < 1 or not self.layers:
            got = f"{self.n_inputs}, {self.n_classes}, {len(self.layers)}"
            msg = f"n_inputs, n_classes and the number of layers must be >= 1, got {got}"
            raise ValueError(msg)
        if self.input_shape is not None and int(np.prod(self.input_shape)) != self.n_inputs:
            msg = f"input_shape {list(self.input_shape)} does not hold n_inputs = {self.n_inputs}"
            raise ValueError(msg)
        layer_shapes(self.input_shape or (self.n_inputs, 1, 1), self.layers)  # (raises when one does not fit)


def layer_shapes(input_shape: tuple[int, int, int], layers: tuple[DecolleLayer, ...]) -> list[tuple[int, int, int]]:
    """Each layer's output as (channels, height, width), bottom up; raises ValueError when a conv kernel
    is larger than what it convolves."""
    shapes = []
    c, h, w = input_shape
    for index, lp in enumerate(layers):
        if lp.type == "conv":
            if lp.kernel > h or lp.kernel > w:
                msg = f"layer {index}: a {lp.kernel}x{lp.kernel} kernel does not fit its {h}x{w} input"
                raise ValueError(msg)
            c, h, w = lp.maps, h - lp.kernel + 1, w - lp.kernel + 1
        else:
            c, h, w = lp.neurons, 1, 1
        shapes.append((c, h, w))
    return shapes


def _consts(p: DecolleLayer, rebase_every: int) -> np.ndarray:
    consts = np.zeros(kernel.N_CONSTS)
    consts[kernel.C_REBASE_EVERY] = rebase_every
    consts[kernel.C_TAU_MEM] = p.tau_mem_us
    consts[kernel.C_TAU_OUT] = p.tau_out_us
    consts[kernel.C_THETA] = p.threshold
    consts[kernel.C_SHARPNESS] = p.sharpness
    consts[kernel.C_ETA] = p.eta
    consts[kernel.C_TARGET] = p.target
    consts[kernel.C_QUIET] = p.quiet
    consts[kernel.C_FLOOR] = p.floor
    consts[kernel.C_BUSY] = p.busy
    consts[kernel.C_RANDOM] = 1.0 if p.feedback == "random" else 0.0
    return consts


#: every array of a layer's state, each kept in the layer's dict under this name
LAYER_ARRAYS = ("w", "w_fwd", "g", "elig", "pend", "x", "active", "u", "y", "acc", "lstate", "fstate")


def _state(layer: dict[str, np.ndarray]) -> kernel.LayerState:
    """A layer's arrays in the kernel's order."""
    return tuple(layer[name] for name in LAYER_ARRAYS)  # type: ignore[return-value]


class DecolleNetwork:
    """DECOLLE layers on one spike stream (semantics in the module docstring)."""

    def __init__(self, params: DecolleParams, *, rebase_every: int = kernel.REBASE_EVERY) -> None:
        """``rebase_every``: how many input spikes the kernel's factored sums run at most before they
        restart (the kernel's docstring); results do not depend on it beyond float rounding, which the
        tests check by setting it low."""
        self.params = params
        self.learning = True
        self.layers: list[dict[str, np.ndarray]] = []
        #: per layer, a conv layer's geometry (``kernel.G_*``), None for an fc layer
        self._geoms: list[np.ndarray | None] = []
        shape_in = params.input_shape or (params.n_inputs, 1, 1)
        shapes = layer_shapes(shape_in, params.layers)
        for index, lp in enumerate(params.layers):
            rng = np.random.default_rng((params.seed, index))
            n_in = int(np.prod(shape_in))
            n_out = int(np.prod(shapes[index]))
            if lp.type == "conv":
                shape = (lp.maps, shape_in[0] * lp.kernel * lp.kernel)
                geom = np.array([*shape_in, lp.kernel, *shapes[index]], np.int64)
                elig_shape = (n_out, shape[1])
            else:
                shape, geom, elig_shape = (n_out, n_in), None, (n_out, n_in)
            w = rng.normal(lp.w_mean, lp.w_std, size=shape) if lp.w_std > 0 else np.full(shape, lp.w_mean)
            g = rng.normal(0.0, 1.0 / np.sqrt(n_out), size=(params.n_classes, n_out))
            lstate = np.zeros(kernel.N_LSTATE, np.int64)
            lstate[kernel.L_LAST_T] = kernel.INT64_MIN
            fstate = np.ones(kernel.N_FSTATE)
            self.layers.append(
                {
                    "w": w,
                    "w_fwd": w.copy(),
                    "g": g,
                    "elig": np.zeros(elig_shape),
                    "pend": np.zeros(elig_shape),
                    "x": np.zeros(n_in),
                    "active": np.zeros(2 * n_in + 1, np.int64),
                    "u": np.zeros(n_out),
                    "y": np.zeros(n_out),
                    "acc": np.zeros((3, n_out)),
                    "lstate": lstate,
                    "fstate": fstate,
                }
            )
            self._geoms.append(geom)
            shape_in = shapes[index]
        n_in = int(np.prod(shape_in))
        #: the top layer's spikes as (channels, height, width)
        self.output_shape = shape_in
        self._consts = [_consts(lp, rebase_every) for lp in params.layers]
        self.n_outputs = n_in
        self._queue = np.zeros(0, LABEL_DTYPE)
        # the open segment: label (-1 unknown), train flag, opened (0/1); last spike and label times
        self._seg = np.array([-1, 0, 0], np.int64)
        self._last_t = kernel.INT64_MIN
        self._last_label_t = kernel.INT64_MIN
        self.segments = 0

    # -- learning switch -------------------------------------------------------------------------
    def freeze(self) -> None:
        """Stop learning; the layers keep running on their weights. The open segment's steps so far are
        settled first: later spikes still move the traces they are factored over."""
        if self.learning:
            for index, layer in enumerate(self.layers):
                self._settle(index, layer)
        self.learning = False

    def unfreeze(self) -> None:
        """Resume learning; eligibility traces, not kept while frozen, start afresh."""
        if not self.learning:
            for index, layer in enumerate(self.layers):
                geom = self._geoms[index]
                if geom is None:
                    kernel.relearn(_state(layer), self._consts[index])
                else:
                    kernel.conv_relearn(_state(layer), self._consts[index], geom)
        self.learning = True

    # -- input -----------------------------------------------------------------------------------
    def add_labels(self, labels: np.ndarray) -> None:
        """Queue label records; each takes effect before the first spike with ``t >= label.t``."""
        labels = np.asarray(labels)
        if labels.dtype != LABEL_DTYPE or labels.ndim != 1:
            msg = f"labels must be a one-dimensional LABEL_DTYPE array, got {labels.dtype} {labels.shape}"
            raise ValueError(msg)
        if len(labels) == 0:
            return
        lab = labels["label"]
        if lab.min() < -1 or lab.max() >= self.params.n_classes:
            msg = f"label outside [-1, {self.params.n_classes - 1}]: {int(lab.min())} .. {int(lab.max())}"
            raise ValueError(msg)
        t = labels["t"]
        prev = self._queue["t"][-1] if len(self._queue) else self._last_label_t
        if np.any(np.diff(t) < 0) or t[0] < prev:
            msg = "label timestamps must be non-decreasing"
            raise ValueError(msg)
        self._queue = np.concatenate([self._queue, labels])

    def _apply_label(self, rec: np.void) -> None:
        """Close the open segment and start the next at rest."""
        for layer, consts, geom in zip(self.layers, self._consts, self._geoms, strict=True):
            if geom is None:
                kernel.layer_reset(_state(layer), consts)
            else:
                kernel.conv_layer_reset(_state(layer), consts, geom)
        if self._seg[2] == 1 and self._seg[1] == 1:
            for layer in self.layers:
                layer["w_fwd"][:, :] = layer["w"]
        self._seg[:] = (int(rec["label"]), int(rec["train"]), 1)
        self._last_label_t = int(rec["t"])
        self.segments += 1

    def process(self, spikes: np.ndarray) -> np.ndarray:
        """Consume a batch of spikes (``c`` = input channel); returns the top layer's spikes, in time order."""
        spikes = np.asarray(spikes)
        if spikes.dtype != SPIKE_DTYPE or spikes.ndim != 1:
            msg = f"spikes must be a one-dimensional SPIKE_DTYPE array, got {spikes.dtype} {spikes.shape}"
            raise ValueError(msg)
        if len(spikes) == 0:
            return np.zeros(0, SPIKE_DTYPE)
        t = np.ascontiguousarray(spikes["t"])
        c = np.ascontiguousarray(spikes["c"]).astype(np.int64)
        if int(c.max()) >= self.params.n_inputs:
            msg = f"spike channel c={int(c.max())} >= n_inputs={self.params.n_inputs}"
            raise ValueError(msg)
        if np.any(np.diff(t) < 0) or t[0] < self._last_t:
            msg = "spike timestamps must be non-decreasing and not earlier than those processed"
            raise ValueError(msg)
        outs: list[np.ndarray] = []
        s = 0
        while s < len(t):
            while len(self._queue) and self._queue["t"][0] <= t[s]:
                self._apply_label(self._queue[0])
                self._queue = self._queue[1:]
            end = len(t) if not len(self._queue) else int(np.searchsorted(t, self._queue["t"][0], side="left"))
            outs.append(self._run(t[s:end], c[s:end]))
            s = end
        self._last_t = int(t[-1])
        out = np.concatenate(outs)
        spikes_out = np.zeros(len(out), SPIKE_DTYPE)
        spikes_out["t"] = out[:, 0] if len(out) else 0
        spikes_out["c"] = out[:, 1] if len(out) else 0
        return spikes_out

    def _run(self, t: np.ndarray, c: np.ndarray) -> np.ndarray:
        """One run of spikes within a segment through every layer; the top layer's ``(t, c)`` rows."""
        label = int(self._seg[0])
        teach = self.learning and self._seg[1] == 1 and label >= 0
        for layer, consts, geom in zip(self.layers, self._consts, self._geoms, strict=True):
            n_out = layer["u"].shape[0]
            cap = max(n_out, min(len(t) * n_out, 1 << 16))
            got_t: list[np.ndarray] = []
            got_c: list[np.ndarray] = []
            s = 0
            while s < len(t):
                out_t = np.empty(cap, np.int64)
                out_c = np.empty(cap, np.int64)
                state = _state(layer)
                # a layer with eta 0 never changes its weights: no eligibility to keep, no step to take
                moves = bool(consts[kernel.C_ETA] > 0.0)
                seg = (label, teach and moves, self.learning and moves)
                if geom is None:
                    s, n = kernel.layer_run((t, c), s, state, consts, seg, (out_t, out_c))
                else:
                    s, n = kernel.conv_layer_run((t, c), s, state, consts, geom, seg, (out_t, out_c))
                got_t.append(out_t[:n])
                got_c.append(out_c[:n])
            t = np.concatenate(got_t) if got_t else np.zeros(0, np.int64)
            c = np.concatenate(got_c) if got_c else np.zeros(0, np.int64)
        return np.stack([t, c], axis=1) if len(t) else np.zeros((0, 2), np.int64)

    def flush(self) -> np.ndarray:
        """End of stream: apply the queued labels (closing the last training segment); no spikes come out."""
        for rec in self._queue:
            self._apply_label(rec)
        self._queue = self._queue[:0]
        for index, layer in enumerate(self.layers):
            self._settle(index, layer)
        if self._seg[2] == 1 and self._seg[1] == 1:
            for layer in self.layers:
                layer["w_fwd"][:, :] = layer["w"]
            self._seg[2] = 0
        return np.zeros(0, SPIKE_DTYPE)

    # -- state -----------------------------------------------------------------------------------
    def weights(self, layer: int) -> np.ndarray:
        """A copy of layer ``layer``'s learning weights: (neurons, inputs) for an fc layer, (maps, taps)
        for a conv layer (tap ``(channel * kernel + dy) * kernel + dx``), with the open segment's steps so far."""
        copy = {k: v.copy() for k, v in self.layers[layer].items()}
        self._settle(layer, copy)
        return copy["w"]

    def _settle(self, index: int, layer: dict[str, np.ndarray]) -> None:
        """Move a layer's pending steps into its ``w`` (``kernel.settle``)."""
        geom = self._geoms[index]
        if geom is None:
            kernel.settle(_state(layer), self._consts[index])
        else:
            kernel.conv_settle(_state(layer), self._consts[index], geom)

    @property
    def counters(self) -> dict[str, Any]:
        """Per layer: input spikes, output spikes, teaching steps; and the segments."""
        return {
            "inputs": [int(la["lstate"][kernel.L_N_INPUTS]) for la in self.layers],
            "outputs": [int(la["lstate"][kernel.L_N_OUTPUTS]) for la in self.layers],
            "updates": [int(la["lstate"][kernel.L_N_UPDATES]) for la in self.layers],
            "segments": self.segments,
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every piece of state as arrays (copies), so that restore + continue is bit-identical."""
        state = {f"{i}.{k}": v.copy() for i, la in enumerate(self.layers) for k, v in la.items()}
        state["queue"] = self._queue.copy()
        state["seg"] = self._seg.copy()
        state["times"] = np.array([self._last_t, self._last_label_t, self.segments], np.int64)
        state["learning"] = np.array(self.learning)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict``; raises ValueError when it does not fit this network."""
        for i, la in enumerate(self.layers):
            for k, cur in la.items():
                new = np.asarray(state.get(f"{i}.{k}"))
                if new.shape != cur.shape or new.dtype != cur.dtype:
                    msg = f"state '{i}.{k}' has shape {new.shape} {new.dtype}, expected {cur.shape} {cur.dtype}"
                    raise ValueError(msg)
        queue = np.asarray(state["queue"])
        if queue.dtype != LABEL_DTYPE:
            msg = f"state 'queue' has dtype {queue.dtype}, expected LABEL_DTYPE"
            raise ValueError(msg)
        for i, la in enumerate(self.layers):
            for k in la:
                la[k] = np.array(state[f"{i}.{k}"])
        self._queue = queue.copy()
        self._seg = np.asarray(state["seg"], np.int64).copy()
        times = np.asarray(state["times"], np.int64)
        self._last_t, self._last_label_t, self.segments = int(times[0]), int(times[1]), int(times[2])
        self.learning = bool(state["learning"])
