"""The STDP feature-extractor network: parameters, state and a validating shell over the kernels.

A ``Network`` is a stack of layers (``ConvParams``, ``PoolParams``, ``FcParams``) over an input of
shape ``(C, H, W)``. ``process`` takes a batch of ``SPIKE_DTYPE`` input spikes (for camera events:
``c`` = polarity with 2 input channels) and returns the top layer's inference spikes. The exact
semantics are written down in ``nodes.stdp.kernel``. Because layers have no feedback, a batch is run
layer by layer (layer 1 over the whole batch, then layer 2 over its output ...), which is identical to
depth-first processing per event; so batch sizes never change anything.

Learning rates: the thesis fixes ``a_plus = -8 * a_minus`` and ``beta_plus = 3`` (Table 3.1) but not
the magnitudes. The defaults here (conv ``a_minus = -0.005``, fc ``a_minus = -0.002``) are a
reasonable starting point and are meant to be tuned (thesis 3.3.1: performance is stable over about an
order of magnitude of learning rate).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nodes.stdp import kernel
from pipeline.events import SPIKE_DTYPE

log = logging.getLogger(__name__)

_MAX_CHANNELS = 65536  # output channel index travels as uint16


@dataclass(frozen=True, kw_only=True)
class _LearningLayer:
    """What convolutional and fully connected STDP layers share: two thresholds, the STDP rule's
    amplitudes and the initial weight distribution (each subclass sets its own defaults)."""

    th_learn: float
    th_inf: float
    a_minus: float
    a_plus: float | None = None
    beta_plus: float = 3.0
    w_init_mean: float
    w_init_std: float = 0.1

    def __post_init__(self) -> None:
        for name, value in (("th_learn", self.th_learn), ("th_inf", self.th_inf)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.a_minus) and self.a_minus <= 0):
            raise ValueError(f"a_minus must be finite and <= 0 (depression), got {self.a_minus!r}")
        a_plus = self.a_plus
        if a_plus is not None and not (math.isfinite(a_plus) and a_plus >= 0):
            raise ValueError(f"a_plus must be finite and >= 0 (or None for -8 * a_minus), got {a_plus!r}")
        if not (math.isfinite(self.beta_plus) and self.beta_plus >= 0):
            raise ValueError(f"beta_plus must be finite and >= 0, got {self.beta_plus!r}")
        if not math.isfinite(self.w_init_mean):
            raise ValueError(f"w_init_mean must be finite, got {self.w_init_mean!r}")
        if not (math.isfinite(self.w_init_std) and self.w_init_std >= 0):
            raise ValueError(f"w_init_std must be finite and >= 0, got {self.w_init_std!r}")

    @property
    def a_plus_effective(self) -> float:
        """``a_plus``, or ``-8 * a_minus`` when it was left as None."""
        return -8.0 * self.a_minus if self.a_plus is None else float(self.a_plus)


@dataclass(frozen=True, kw_only=True)
class ConvParams(_LearningLayer):
    """A convolutional STDP layer (stride 1, valid), thesis 3.2.3 and Table 3.1.

    maps: number of feature maps M (>= 1). kernel: filter size K (Table 3.1: 5).
    th_learn / th_inf: thresholds of the learning and inference accumulators (> 0; Table 3.1: 8 and 30
    for MNIST conv1/conv2, section 3.3.2: 8 and 50 for N-MNIST).
    r_learn: inter-map WTA radius of learning spikes, Chebyshev distance in output positions (>= 0;
    Table 3.1: 2). r_inf: inference inhibition radius onto other maps (0 = same position only,
    -1 = none; Table 3.1: 0).
    a_minus: LTD step (<= 0; tunable, default -0.005). a_plus: LTP amplitude (None = -8 * a_minus, the
    thesis ratio). beta_plus: LTP damping (Table 3.1 text: 3).
    w_init_mean / w_init_std: initial weights N(mean, std) clipped to [0, 1] (Table 3.1: N(0.8, 0.1)).
    """

    maps: int
    kernel: int = 5
    r_learn: int = 2
    r_inf: int = 0
    a_minus: float = -0.005
    w_init_mean: float = 0.8

    def __post_init__(self) -> None:
        if not (1 <= self.maps <= _MAX_CHANNELS):
            raise ValueError(f"maps must be in [1, {_MAX_CHANNELS}], got {self.maps!r}")
        if self.kernel < 1:
            raise ValueError(f"kernel must be >= 1, got {self.kernel!r}")
        if self.r_learn < 0:
            raise ValueError(f"r_learn must be >= 0, got {self.r_learn!r}")
        if self.r_inf < -1:
            raise ValueError(f"r_inf must be >= -1 (-1 = no inference inhibition), got {self.r_inf!r}")
        super().__post_init__()


@dataclass(frozen=True, kw_only=True)
class PoolParams:
    """Non-overlapping ``size x size`` pooling that forwards every spike (thesis 3.2.3).

    The pooled size is ``ceil(H / size)``: partial windows at the border are kept.
    """

    size: int = 2

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size!r}")


@dataclass(frozen=True, kw_only=True)
class FcParams(_LearningLayer):
    """A fully connected STDP layer over the flattened ``(C, H, W)`` input (thesis 3.2.3).

    neurons: N (>= 1; thesis: 1000 MNIST, 1024 N-MNIST). th_learn / th_inf: thresholds (> 0; Table
    3.1: 30, section 3.3.2: 60). a_minus: LTD step (<= 0; tunable, default -0.002). a_plus: None =
    -8 * a_minus. beta_plus: 3. w_init_mean / w_init_std: N(0.67, 0.1) clipped to [0, 1] (Table 3.1).
    wta_inf: an inference spike resets every other neuron's inference accumulator (default False).
    A learning spike always resets every learning accumulator of the layer (one map).
    """

    neurons: int
    a_minus: float = -0.002
    w_init_mean: float = 0.67
    wta_inf: bool = False

    def __post_init__(self) -> None:
        if not (1 <= self.neurons <= _MAX_CHANNELS):
            raise ValueError(f"neurons must be in [1, {_MAX_CHANNELS}], got {self.neurons!r}")
        super().__post_init__()


LayerParams = ConvParams | PoolParams | FcParams

_KINDS: dict[str, type] = {"conv": ConvParams, "pool": PoolParams, "fc": FcParams}


@dataclass
class _WeightedLayer:
    """State of one conv or fc layer in the kernel's internal layout (see ``nodes.stdp.kernel``)."""

    params: ConvParams | FcParams
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    geometry: np.ndarray  # [C, H, W, KH, KW, M]
    w: np.ndarray  # flat (C, KH, KW, M) float32, kernel columns flipped (see nodes.stdp.kernel)
    v_learn: np.ndarray  # flat (Ho, Wo, M) float32
    v_inf: np.ndarray  # flat (Ho, Wo, M) float32
    pos_ref: np.ndarray  # (Ho*Wo,) int64: a neuron's reference time is max(pos_ref[pos], map_ref[m])
    map_ref: np.ndarray  # (M,) int64
    last_in: np.ndarray  # flat (C, H, W) int64
    lazy: np.ndarray  # int32 [epoch, map epochs (M), position epochs (Ho*Wo)]: pending map resets (a cache)
    counters: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))  # n, learn, inf

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return int(self.geometry[3]), int(self.geometry[4])

    @property
    def r_learn(self) -> int:
        return self.params.r_learn if isinstance(self.params, ConvParams) else 0

    @property
    def r_inf(self) -> int:
        if isinstance(self.params, ConvParams):
            return self.params.r_inf
        return 0 if self.params.wta_inf else -1

    def canonical_weight_shape(self) -> tuple[int, ...]:
        c, h, w_, kh, kw, m = (int(v) for v in self.geometry)
        if isinstance(self.params, FcParams):
            return (m, c * h * w_)
        return (m, c, kh, kw)

    def neuron_shape(self) -> tuple[int, ...]:
        return (self.out_shape[0],) if isinstance(self.params, FcParams) else self.out_shape


@dataclass
class _PoolLayer:
    params: PoolParams
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    counters: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))  # n, 0, forwarded


def _layer_from_config(entry: Mapping[str, Any]) -> LayerParams:
    if "type" not in entry:
        raise ValueError(f"layer entry {dict(entry)!r} has no 'type' (one of {sorted(_KINDS)})")
    kind = entry["type"]
    if kind not in _KINDS:
        raise ValueError(f"unknown layer type {kind!r}; expected one of {sorted(_KINDS)}")
    cls = _KINDS[kind]
    fields = {k: v for k, v in entry.items() if k != "type"}
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown keys {unknown} for a {kind!r} layer; allowed: {sorted(allowed)}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in fields and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"a {kind!r} layer needs {missing}")
    try:
        return cls(**fields)  # type: ignore[no-any-return]
    except TypeError as exc:  # a value of the wrong type, e.g. a string threshold
        raise ValueError(f"a {kind!r} layer: {exc}") from None


def output_shape(input_shape: Sequence[int], layers: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """The ``(C, H, W)`` of the spikes a network of these config ``layers`` sends, without building it
    (no weights are drawn); raises ``ValueError`` for a layer that cannot be built, as ``Network`` would."""
    cur = tuple(int(v) for v in input_shape)
    for i, entry in enumerate(layers):
        try:
            p = _layer_from_config(entry)
        except ValueError as exc:
            raise ValueError(f"layers[{i}]: {exc}") from None
        c, h, w = cur
        if isinstance(p, PoolParams):
            cur = (c, -(-h // p.size), -(-w // p.size))
        elif isinstance(p, ConvParams):
            if h < p.kernel or w < p.kernel:
                raise ValueError(f"layer {i}: kernel {p.kernel} is larger than its input {cur}")
            cur = (p.maps, h - p.kernel + 1, w - p.kernel + 1)
        else:
            cur = (p.neurons, 1, 1)
    return cur  # type: ignore[return-value]


class Network:
    """A stack of STDP layers that learns online from a spike stream.

    ``input_shape`` = ``(C, H, W)``; ``layers`` = a sequence of ``ConvParams``, ``PoolParams`` and
    ``FcParams``; ``seed`` seeds ``numpy.random.default_rng``, which draws the initial weights layer by
    layer in order (same seed, same config: bit-identical weights).
    """

    def __init__(self, input_shape: Sequence[int], layers: Sequence[LayerParams], seed: int = 0) -> None:
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {tuple(input_shape)!r}")
        if shape[0] > _MAX_CHANNELS or shape[1] > 65536 or shape[2] > 65536:
            raise ValueError(f"input_shape {shape} exceeds the uint16 range of spike coordinates")
        if not layers:
            raise ValueError("layers is empty; give at least one ConvParams, PoolParams or FcParams")
        self.input_shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        self.params: tuple[LayerParams, ...] = tuple(layers)
        self.seed = int(seed)
        self._learning = True
        rng = np.random.default_rng(self.seed)
        self._layers: list[_WeightedLayer | _PoolLayer] = []
        cur = self.input_shape
        for i, p in enumerate(self.params):
            if isinstance(p, PoolParams):
                out = (cur[0], -(-cur[1] // p.size), -(-cur[2] // p.size))
                self._layers.append(_PoolLayer(params=p, in_shape=cur, out_shape=out))
            elif isinstance(p, (ConvParams, FcParams)):
                self._layers.append(self._make_weighted(i, p, cur, rng))
            else:
                raise ValueError(f"layer {i} is {p!r}; expected ConvParams, PoolParams or FcParams")
            cur = self._layers[-1].out_shape

    @staticmethod
    def _make_weighted(
        i: int, p: ConvParams | FcParams, cur: tuple[int, int, int], rng: np.random.Generator
    ) -> _WeightedLayer:
        c, h, w_ = cur
        if isinstance(p, ConvParams):
            kh = kw = p.kernel
            m = p.maps
            if h < kh or w_ < kw:
                raise ValueError(f"layer {i}: kernel {p.kernel} is larger than its input {cur}")
            out = (m, h - kh + 1, w_ - kw + 1)
            canonical = rng.normal(p.w_init_mean, p.w_init_std, size=(m, c, kh, kw))
        else:
            kh, kw, m = h, w_, p.neurons
            out = (m, 1, 1)
            canonical = rng.normal(p.w_init_mean, p.w_init_std, size=(m, c * h * w_))
        np.clip(canonical, 0.0, 1.0, out=canonical)  # then rounded to float32 by _set_weights
        n_neurons = out[0] * out[1] * out[2]
        layer = _WeightedLayer(
            params=p,
            in_shape=cur,
            out_shape=out,
            geometry=np.array([c, h, w_, kh, kw, m], np.int64),
            w=np.empty(c * kh * kw * m, np.float32),
            v_learn=np.zeros(n_neurons, np.float32),
            v_inf=np.zeros(n_neurons, np.float32),
            pos_ref=np.zeros(out[1] * out[2], np.int64),
            map_ref=np.zeros(m, np.int64),
            last_in=np.zeros(c * h * w_, np.int64),
            lazy=np.zeros(1 + m + out[1] * out[2], np.int32),
        )
        _set_weights(layer, canonical)
        return layer

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Network:
        """Build from a plain mapping (e.g. a TOML table).

        ``{"input_shape": [2, 34, 34], "seed": 0, "layers": [{"type": "conv", "maps": 16, ...},
        {"type": "pool"}, {"type": "fc", "neurons": 1024, ...}]}``; unknown keys are rejected.
        """
        allowed = {"input_shape", "layers", "seed"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(f"unknown network keys {unknown}; allowed: {sorted(allowed)}")
        for key in ("input_shape", "layers"):
            if key not in config:
                raise ValueError(f"network config lacks {key!r}")
        layers = []
        for i, entry in enumerate(config["layers"]):
            try:
                layers.append(_layer_from_config(entry))
            except ValueError as exc:
                raise ValueError(f"layers[{i}]: {exc}") from None
        return cls(config["input_shape"], layers, seed=int(config.get("seed", 0)))

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
        return self._layers[-1].out_shape

    def counters(self) -> list[dict[str, int | str]]:
        """Per layer: kind, input spikes received, learning spikes and inference (output) spikes."""
        out: list[dict[str, int | str]] = []
        for layer in self._layers:
            kind = (
                "pool" if isinstance(layer, _PoolLayer) else ("conv" if isinstance(layer.params, ConvParams) else "fc")
            )
            out.append(
                {
                    "kind": kind,
                    "inputs": int(layer.counters[0]),
                    "learning_spikes": int(layer.counters[1]),
                    "inference_spikes": int(layer.counters[2]),
                }
            )
        return out

    # ------------------------------------------------------------------ processing
    def _validate(self, spikes: np.ndarray) -> np.ndarray:
        if not isinstance(spikes, np.ndarray) or spikes.dtype != SPIKE_DTYPE:
            got = spikes.dtype if isinstance(spikes, np.ndarray) else type(spikes).__name__
            raise ValueError(f"spikes must be a numpy array of SPIKE_DTYPE {SPIKE_DTYPE}, got {got}")
        if spikes.ndim != 1:
            raise ValueError(f"spikes must be 1-D, got shape {spikes.shape}")
        c, h, w = self.input_shape
        for name, limit in (("c", c), ("y", h), ("x", w)):
            col = spikes[name]
            bad = np.flatnonzero(col >= limit)
            if bad.size:
                k = int(bad[0])
                raise ValueError(
                    f"spike {k} has {name} = {int(col[k])}, out of range for input shape (C, H, W) = "
                    f"{self.input_shape} (need {name} < {limit})"
                )
        return spikes

    def process_all_layers(self, spikes: np.ndarray) -> list[np.ndarray]:
        """Run a batch through every layer; returns each layer's output spikes (``SPIKE_DTYPE``)."""
        return [_as_spikes(cols) for cols in self._run(spikes)]

    def process(self, spikes: np.ndarray) -> np.ndarray:
        """Run a batch of input spikes; returns the top layer's inference spikes (``SPIKE_DTYPE``)."""
        return _as_spikes(self._run(spikes)[-1])

    def _run(self, spikes: np.ndarray) -> list[_Columns]:
        """Every layer's output as columns: between layers the spikes stay in the form the kernels take."""
        current = _columns(self._validate(spikes))
        outputs: list[_Columns] = []
        for layer in self._layers:
            if isinstance(layer, _PoolLayer):
                current = _pool(current, layer)
            else:
                current = _run_weighted(current, layer, self._learning)
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
        d: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self._layers):
            d[f"{i}.counters"] = layer.counters.copy()
            if isinstance(layer, _PoolLayer):
                continue
            m = layer.out_shape[0]
            kernel.materialize_map_resets(layer.v_learn, layer.lazy, m)
            d[f"{i}.weight"] = _get_weights(layer)
            nshape = layer.neuron_shape()
            ho, wo = layer.out_shape[1], layer.out_shape[2]
            ref = np.maximum(layer.pos_ref[:, None], layer.map_ref[None, :])  # (Ho*Wo, M)
            for name, flat in (("v_learn", layer.v_learn), ("v_inf", layer.v_inf), ("ref", ref)):
                arr = flat.reshape(ho, wo, m).transpose(2, 0, 1)
                d[f"{i}.{name}"] = np.ascontiguousarray(arr).reshape(nshape)
            d[f"{i}.map_ref"] = layer.map_ref.copy()
            d[f"{i}.last_in"] = layer.last_in.reshape(layer.in_shape).copy()
        return d

    def _expected_state(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        exp: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        f4, i8 = np.dtype(np.float32), np.dtype(np.int64)
        for i, layer in enumerate(self._layers):
            exp[f"{i}.counters"] = ((3,), i8)
            if isinstance(layer, _PoolLayer):
                continue
            nshape = layer.neuron_shape()
            exp[f"{i}.weight"] = (layer.canonical_weight_shape(), f4)
            exp[f"{i}.v_learn"] = (nshape, f4)
            exp[f"{i}.v_inf"] = (nshape, f4)
            exp[f"{i}.ref"] = (nshape, i8)
            exp[f"{i}.map_ref"] = ((layer.out_shape[0],), i8)
            exp[f"{i}.last_in"] = (layer.in_shape, i8)
        return exp

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Replace all state with ``state`` (from ``state_dict``); refuses one that does not fit.

        Raises ``ValueError`` naming the missing/unexpected key or the key whose shape or dtype kind
        differs from this configuration; nothing is changed in that case. Floating arrays are stored
        as float32 (a float64 array is rounded), integer arrays as int64. ``ref`` must be what this
        network's dynamics can reach: every neuron's reference time is the later of its position's last
        inter-map reset and its map's ``map_ref`` (a state from ``state_dict`` always is).
        """
        exp = self._expected_state()
        missing = sorted(set(exp) - set(state))
        extra = sorted(set(state) - set(exp))
        if missing:
            raise ValueError(f"state lacks key(s) {missing} required by this network configuration")
        if extra:
            raise ValueError(f"state has key(s) {extra} that this network configuration does not have")
        arrays: dict[str, np.ndarray] = {}
        for key, (shape, dtype) in exp.items():
            arr = np.asarray(state[key])
            if arr.shape != shape:
                raise ValueError(f"state key {key!r} has shape {arr.shape}, this network expects {shape}")
            if arr.dtype.kind != dtype.kind:
                raise ValueError(f"state key {key!r} has dtype {arr.dtype}, this network expects {dtype}")
            if dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError(f"state key {key!r} holds non-finite values")
            arrays[key] = arr.astype(dtype, copy=True)
        pos_refs: dict[int, np.ndarray] = {}
        for i, layer in enumerate(self._layers):
            if isinstance(layer, _PoolLayer):
                continue
            m, ho, wo = layer.out_shape
            ref = arrays[f"{i}.ref"].reshape(m, ho * wo).T  # (positions, maps)
            map_ref = arrays[f"{i}.map_ref"]
            pos_refs[i] = ref.min(axis=1)  # every layer has >= 1 map
            if not np.array_equal(np.maximum(pos_refs[i][:, None], map_ref[None, :]), ref):
                raise ValueError(
                    f"state key '{i}.ref' is not max(position reset, map_ref) for every neuron: not a state "
                    "this network's dynamics can reach"
                )
        for i, layer in enumerate(self._layers):
            layer.counters[:] = arrays[f"{i}.counters"]
            if isinstance(layer, _PoolLayer):
                continue
            m, ho, wo = layer.out_shape
            _set_weights(layer, arrays[f"{i}.weight"])
            for name in ("v_learn", "v_inf"):
                arr = arrays[f"{i}.{name}"].reshape(m, ho, wo).transpose(1, 2, 0)
                getattr(layer, name)[:] = arr.ravel()
            layer.pos_ref[:] = pos_refs[i]
            layer.map_ref[:] = arrays[f"{i}.map_ref"]
            layer.last_in[:] = arrays[f"{i}.last_in"].ravel()
            layer.lazy[:] = 0  # v_learn holds effective values (state_dict applies pending map resets)


def _set_weights(layer: _WeightedLayer, canonical: np.ndarray) -> None:
    c, _h, _w, kh, kw, m = (int(v) for v in layer.geometry)
    four = canonical.reshape(m, c, kh, kw)  # fc: (N, C*H*W) == (N, C, H, W) with kh = H, kw = W
    layer.w[:] = four[:, :, :, ::-1].transpose(1, 2, 3, 0).ravel().astype(np.float32)  # columns flipped


def _get_weights(layer: _WeightedLayer) -> np.ndarray:
    c, _h, _w, kh, kw, m = (int(v) for v in layer.geometry)
    four = layer.w.reshape(c, kh, kw, m)[:, :, ::-1, :].transpose(3, 0, 1, 2)
    return np.ascontiguousarray(four).reshape(layer.canonical_weight_shape())


# Spikes between layers: contiguous columns t (int64) and x, y, c (uint16, as in SPIKE_DTYPE), the form
# the kernel takes and returns, so that no layer packs or unpacks a structured array.
_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _columns(spikes: np.ndarray) -> _Columns:
    t, x, y, c = (np.ascontiguousarray(spikes[name]) for name in ("t", "x", "y", "c"))
    return t, x, y, c


def _as_spikes(cols: _Columns) -> np.ndarray:
    out = np.empty(len(cols[0]), SPIKE_DTYPE)
    out["t"], out["x"], out["y"], out["c"] = cols
    return out


def _pool(cols: _Columns, layer: _PoolLayer) -> _Columns:
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


def _run_weighted(cols: _Columns, layer: _WeightedLayer, learning: bool) -> _Columns:
    p = layer.params
    n = len(cols[0])
    parts = []
    start = 0
    while True:  # one call unless the kernel's output arrays fill up (it then says how far it got)
        t, x, y, c, count, consumed = kernel.weighted_layer_run(
            cols[0][start:], cols[1][start:], cols[2][start:], cols[3][start:],
            layer.w, layer.v_learn, layer.v_inf, layer.pos_ref, layer.map_ref, layer.last_in,
            layer.lazy, layer.counters,
            layer.geometry, _threshold32(p.th_learn), _threshold32(p.th_inf), layer.r_learn, layer.r_inf,
            float(p.a_minus), p.a_plus_effective, float(p.beta_plus), learning, kernel.SELECT_MAX, kernel.EPOCH_LIMIT,
        )  # fmt: skip
        parts.append((t[:count], x[:count], y[:count], c[:count]))
        start += consumed
        if start >= n:
            break
    if len(parts) == 1:
        return parts[0]
    t, x, y, c = (np.concatenate([part[k] for part in parts]) for k in range(4))
    return t, x, y, c
