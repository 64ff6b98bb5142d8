"""The STDP feature-extractor network: a validating shell over the kernels.

A ``Network`` is a stack of layers (``ConvParams``, ``PoolParams``, ``FcParams``; ``nodes.stdp.layers``)
over an input of shape ``(C, H, W)``. ``process`` takes a batch of ``SPIKE_DTYPE`` input spikes (for
camera events: ``c`` = polarity with 2 input channels) and returns the top layer's inference spikes. The
exact semantics are written down in ``nodes.stdp.kernel``. Because layers have no feedback, a batch is
run layer by layer (layer 1 over the whole batch, then layer 2 over its output ...), which is identical
to depth-first processing per event; so batch sizes never change anything.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodes.stdp import kernel
from pipeline.config import build_params
from pipeline.errors import ConfigError
from pipeline.events import SPIKE_DTYPE

from . import state as _state
from .layers import ConvParams, FcParams, LayerParams
from .records import Columns, Constants, LayerArrays
from .rules.registry import RuleLayer, build_layer
from .shapes import MAX_CHANNELS, ConvShape, FcShape, PoolParams
from .state import PoolLayer, WeightedLayer

__all__ = ["Columns", "Network", "as_spikes"]

Layer = WeightedLayer | PoolLayer | RuleLayer

#: Batches whose output maps a layer keeps before folding them into its per-map counts (``count_maps``).
MAP_FOLD = 256


@dataclass(frozen=True, kw_only=True)
class _NetworkTable:
    """The plain mapping ``Network.from_config`` takes."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerParams, ...]
    seed: int = 0


class Network:
    """A stack of STDP layers that learns online from a spike stream.

    ``input_shape`` = ``(C, H, W)``; ``layers`` = a sequence of ``ConvParams``, ``PoolParams`` and
    ``FcParams``; ``seed`` seeds ``numpy.random.default_rng``, which draws the initial weights layer by
    layer in order (same seed, same config: bit-identical weights).
    """

    def __init__(self, input_shape: Sequence[int], layers: Sequence[LayerParams], seed: int = 0) -> None:
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            msg = f"input_shape must be (C, H, W) with positive sizes, got {tuple(input_shape)!r}"
            raise ValueError(msg)
        if shape[0] > MAX_CHANNELS or shape[1] > 65536 or shape[2] > 65536:
            msg = f"input_shape {shape} exceeds the uint16 range of spike coordinates"
            raise ValueError(msg)
        if not layers:
            msg = "layers is empty; give at least one ConvParams, PoolParams or FcParams"
            raise ValueError(msg)
        self.input_shape: tuple[int, int, int] = shape
        self.params: tuple[LayerParams, ...] = tuple(layers)
        self.seed = int(seed)
        self._learning = True
        #: inference spikes per map of every weighted layer since ``count_maps`` (None: not counted), and
        #: the output maps of the batches not yet folded into them
        self._map_spikes: list[np.ndarray | None] | None = None
        self._map_pending: list[list[np.ndarray]] = [[] for _ in self.params]
        rng = np.random.default_rng(self.seed)
        self._layers: list[Layer] = []
        cur = self.input_shape
        for i, p in enumerate(self.params):
            if isinstance(p, PoolParams):
                self._layers.append(_state.pool_layer(p, cur))
            elif isinstance(p, ConvShape | FcShape):
                self._layers.append(build_layer(i, p, cur, rng))
            else:
                msg = f"layer {i} is {p!r}; expected a conv, pool or fc layer's params"
                raise ValueError(msg)
            cur = self._layers[-1].out_shape

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Network:
        """Build from a plain mapping (e.g. a TOML table), read by the config loader.

        ``{"input_shape": [2, 34, 34], "seed": 0, "layers": [{"type": "conv", "maps": 16, ...},
        {"type": "pool"}, {"type": "fc", "neurons": 1024, ...}]}``; an unknown, missing or ill-typed key
        is a ``ValueError`` naming it.
        """
        try:
            table = build_params(_NetworkTable, config, "network")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return cls(table.input_shape, table.layers, seed=table.seed)

    # ------------------------------------------------------------------ properties
    @property
    def learning(self) -> bool:
        """Whether learning (learning accumulators, STDP, WTA) is on; inference runs either way."""
        return self._learning

    @learning.setter
    def learning(self, on: bool) -> None:
        self._learning = bool(on)

    def set_learning(self, on: bool) -> None:
        """Switch learning on or off (off = frozen weights)."""
        self.learning = on

    @property
    def layer_shapes(self) -> tuple[tuple[int, int, int], ...]:
        """Output shape ``(C, H, W)`` of every layer, in order (fc: ``(N, 1, 1)``)."""
        return tuple(layer.out_shape for layer in self._layers)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Output shape ``(C, H, W)`` of the last layer: what the next stage receives."""
        return self._layers[-1].out_shape

    def counters(self) -> list[dict[str, int | str]]:
        """Per layer: kind, input spikes received, learning spikes and inference (output) spikes; for a conv
        or fc layer also its ``maps`` (fc: neurons) and ``maps_learned``, those that have fired a learning
        spike (and so learned) since the network was made: a map whose reset stamp was ever set."""
        out: list[dict[str, int | str]] = []
        for layer in self._layers:
            kind = "pool" if isinstance(layer, PoolLayer) else ("conv" if isinstance(layer.params, ConvShape) else "fc")
            row: dict[str, int | str] = {
                "kind": kind,
                "inputs": int(layer.counters[0]),
                "learning_spikes": int(layer.counters[1]),
                "inference_spikes": int(layer.counters[2]),
            }
            if isinstance(layer, WeightedLayer):
                row["maps"] = int(layer.out_shape[0])
                row["maps_learned"] = int(np.count_nonzero(layer.arrays.map_ref))
            elif not isinstance(layer, PoolLayer):
                row["maps"] = int(layer.out_shape[0])
                row["maps_learned"] = layer.maps_learned()
            out.append(row)
        return out

    def count_maps(self) -> None:
        """Start counting every weighted layer's inference spikes per map (``map_spikes``): a viewer's
        bookkeeping, off until asked for; it changes no result. A batch's output maps are kept (a copy
        of a small array) and folded into the counts every ``MAP_FOLD`` batches by the thread that runs
        the layer: a ``bincount`` per batch cost 7 % of the N-MNIST network's time in 1 ms batches."""
        if self._map_spikes is None:
            self._map_spikes = [
                None if isinstance(layer, PoolLayer) else np.zeros(layer.out_shape[0], np.int64)
                for layer in self._layers
            ]

    def map_spikes(self) -> list[np.ndarray | None] | None:
        """Copies of the per-map spike counts of every layer (None for a pool) since ``count_maps``;
        None before. Safe to call while other threads run layers (a count may lag a batch behind)."""
        counts = self._map_spikes
        if counts is None:
            return None
        out: list[np.ndarray | None] = []
        for total, pending in zip(counts, self._map_pending, strict=True):
            c = None if total is None else total.copy()
            held = list(pending)
            if c is not None and held:
                c += np.bincount(np.concatenate(held), minlength=c.shape[0])[: c.shape[0]]
            out.append(c)
        return out

    def first_kernels(self) -> np.ndarray | None:
        """The first learning layer's weights as ``(M, C, KH, KW)`` (a copy), if it is a conv layer of
        Thiele's rule; None otherwise (other rules keep their own state layout)."""
        for layer in self._layers:
            if isinstance(layer, PoolLayer):
                continue
            if isinstance(layer, WeightedLayer) and isinstance(layer.params, ConvParams):
                return _state.get_weights(layer)
            return None
        return None

    # ------------------------------------------------------------------ processing
    def _validate(self, spikes: np.ndarray) -> np.ndarray:
        if not isinstance(spikes, np.ndarray) or spikes.dtype != SPIKE_DTYPE:
            got = spikes.dtype if isinstance(spikes, np.ndarray) else type(spikes).__name__
            msg = f"spikes must be a numpy array of SPIKE_DTYPE {SPIKE_DTYPE}, got {got}"
            raise ValueError(msg)
        if spikes.ndim != 1:
            msg = f"spikes must be 1-D, got shape {spikes.shape}"
            raise ValueError(msg)
        c, h, w = self.input_shape
        for name, limit in (("c", c), ("y", h), ("x", w)):
            col = spikes[name]
            if not col.shape[0] or col.max() < limit:  # (the maximum first: most batches are fine)
                continue
            bad = np.flatnonzero(col >= limit)
            if bad.size:
                k = int(bad[0])
                msg = (
                    f"spike {k} has {name} = {int(col[k])}, out of range for input shape (C, H, W) = "
                    f"{self.input_shape} (need {name} < {limit})"
                )
                raise ValueError(msg)
        return spikes

    def process_all_layers(self, spikes: np.ndarray) -> list[np.ndarray]:
        """Run a batch through every layer; returns each layer's output spikes (``SPIKE_DTYPE``)."""
        return [as_spikes(cols) for cols in self._run(spikes)]

    def process(self, spikes: np.ndarray) -> np.ndarray:
        """Run a batch of input spikes; returns the top layer's inference spikes (``SPIKE_DTYPE``)."""
        return as_spikes(self._run(spikes)[-1])

    def input_columns(self, spikes: np.ndarray) -> Columns:
        """Validated input spikes as the columns ``run_layers`` takes (a ``ValueError`` names a bad one)."""
        return _columns(self._validate(spikes))

    def run_layers(self, cols: Columns, start: int, stop: int, learning: bool) -> Columns:
        """Layers ``start`` .. ``stop - 1`` over ``cols`` (layer ``start - 1``'s output), learning or not.

        It touches only those layers' state, so that contiguous groups of layers can run in different
        threads (``nodes.stdp.pipelined``); ``process`` is this over all layers with ``learning``.
        """
        counts = self._map_spikes
        for i in range(start, stop):
            layer = self._layers[i]
            if isinstance(layer, PoolLayer):
                cols = _pool(cols, layer)
            elif isinstance(layer, WeightedLayer):
                cols = _run_weighted(cols, layer, learning)
            else:
                cols = layer.run(cols, learning)
            if counts is not None and (c := counts[i]) is not None and cols[3].shape[0]:
                pending = self._map_pending[i]
                pending.append(cols[3].copy())
                if len(pending) >= MAP_FOLD:
                    c += np.bincount(np.concatenate(pending), minlength=c.shape[0])[: c.shape[0]]
                    pending.clear()
        return cols

    def _run(self, spikes: np.ndarray) -> list[Columns]:
        """Every layer's output as columns: between layers the spikes stay in the form the kernels take."""
        current = self.input_columns(spikes)
        outputs: list[Columns] = []
        for i in range(len(self._layers)):
            current = self.run_layers(current, i, i + 1, self._learning)
            outputs.append(current)
        return outputs

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all learned and dynamic state, in canonical layouts.

        Keys ``"<i>.<name>"`` for layer ``i``: weighted layers ``weight`` (conv ``(M, C, K, K)``, fc
        ``(N, C*H*W)``, float32), ``v_learn``, ``v_inf``, ``ref`` (conv ``(M, Ho, Wo)``, fc ``(N,)``),
        ``map_ref`` (conv ``(M,)``: counter of each map's last learning spike; fc ``(N,)``: the same
        per neuron), ``last_in`` ``(C, H, W)``; every layer ``counters`` = ``[inputs, learning spikes,
        inference spikes]`` (pool: ``[inputs, 0, forwarded]``). Pending lazy map resets are applied
        first, so ``v_learn`` and ``ref`` are the effective values.
        """
        return _state.state_dict(self._layers)

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Replace all state with ``state`` (from ``state_dict``); refuses one that does not fit.

        Raises ``ValueError`` naming the missing/unexpected key or the key whose shape or dtype kind
        differs from this configuration; nothing is changed in that case. Floating arrays are stored
        as float32 (a float64 array is rounded), integer arrays as int64. ``ref`` must be what this
        network's dynamics can reach: every neuron's reference time is the later of its position's last
        inter-map reset and its map's ``map_ref`` (a state from ``state_dict`` always is).
        """
        _state.load_state_dict(self._layers, state)


def _columns(spikes: np.ndarray) -> Columns:
    t, x, y, c = (np.ascontiguousarray(spikes[name]) for name in ("t", "x", "y", "c"))
    return t, x, y, c


def as_spikes(cols: Columns) -> np.ndarray:
    """Columns (``t, x, y, c``) as one ``SPIKE_DTYPE`` array."""
    out = np.empty(len(cols[0]), SPIKE_DTYPE)
    out["t"], out["x"], out["y"], out["c"] = cols
    return out


def _pool(cols: Columns, layer: PoolLayer) -> Columns:
    s = layer.params.size
    t, x, y, c = cols
    layer.counters[0] += t.shape[0]
    layer.counters[2] += t.shape[0]
    return t, x // np.uint16(s), y // np.uint16(s), c


def _threshold32(th: float) -> np.float32:
    """The smallest float32 >= ``th``: for a float32 ``v``, ``v >= th`` iff ``v >= _threshold32(th)``.

    Comparing float32 with float32 keeps the kernel's hot loop in float32 without changing a result.
    """
    t32 = np.float32(th)
    if float(t32) < th:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return np.float32(t32)


def _constants(layer: WeightedLayer) -> Constants:
    """The layer's constants for the kernel; the kernel's limits are read now, so tests can change them."""
    return _layer_constants(layer.params, layer.r_learn, layer.r_inf, kernel.SELECT_MAX, kernel.EPOCH_LIMIT)


@functools.lru_cache(maxsize=256)
def _layer_constants(
    p: ConvParams | FcParams, r_learn: int, r_inf: int, select_max: int, epoch_limit: int
) -> Constants:
    """``_constants``, made once per layer configuration: making them took ~15 µs per layer and batch,
    a tenth of a 1 ms slice's time in the N-MNIST network."""
    return Constants(
        th_learn=_threshold32(p.th_learn),
        th_inf=_threshold32(p.th_inf),
        r_learn=r_learn,
        r_inf=r_inf,
        a_minus=float(p.a_minus),
        a_plus=p.a_plus_effective,
        beta_plus=float(p.beta_plus),
        select_max=select_max,
        epoch_limit=epoch_limit,
    )


def _run_weighted(cols: Columns, layer: WeightedLayer, learning: bool) -> Columns:
    arrays: LayerArrays = layer.arrays
    constants = _constants(layer)
    n = len(cols[0])
    parts = []
    start = 0
    while True:  # one call unless the kernel's output arrays fill up (it then says how far it got)
        t_in, x_in, y_in, c_in = (col[start:] for col in cols)
        out = kernel.weighted_layer_run(t_in, x_in, y_in, c_in, arrays, layer.geometry, constants, learning)
        t, x, y, c, count, consumed = out
        parts.append((t[:count], x[:count], y[:count], c[:count]))
        start += consumed
        if start >= n:
            break
    if len(parts) == 1:
        return parts[0]
    t, x, y, c = (np.concatenate([part[k] for part in parts]) for k in range(4))
    return t, x, y, c
