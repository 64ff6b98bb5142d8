"""A network's per-layer state: how it is built, and how it converts to and from a checkpoint.

Inside, the state is kept in the kernel's layout (``nodes.stdp.kernel``: weights flat ``(C, KH, KW,
M)`` with the kernel columns flipped, neurons flat ``(Ho, Wo, M)``, no per-neuron reference time).
``state_dict`` and ``load_state_dict`` speak the canonical layouts (conv weights ``(M, C, K, K)``, fc
``(N, C*H*W)``, neurons ``(M, Ho, Wo)``), which a checkpoint stores and the reference implementation uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nodes.stdp import kernel

from .layers import ConvParams, FcParams
from .records import Geometry, LayerArrays
from .shapes import PoolParams

if TYPE_CHECKING:
    from .rules.registry import RuleLayer


@dataclass
class WeightedLayer:
    """State of one conv or fc layer (an fc layer is run as a conv, see ``nodes.stdp.kernel``)."""

    params: ConvParams | FcParams
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    geometry: Geometry
    arrays: LayerArrays

    @property
    def counters(self) -> np.ndarray:
        """``[inputs, learning spikes, inference spikes]`` (int64)."""
        return self.arrays.counters

    @property
    def r_learn(self) -> int:
        """Radius of the inter-map winner-take-all on learning spikes (fc: 0)."""
        return self.params.r_learn if isinstance(self.params, ConvParams) else 0

    @property
    def r_inf(self) -> int:
        """Radius of inference inhibition between maps; -1: none (an fc layer without ``wta_inf``)."""
        if isinstance(self.params, ConvParams):
            return self.params.r_inf
        return 0 if self.params.wta_inf else -1

    def canonical_weight_shape(self) -> tuple[int, ...]:
        """Shape of the weights in a checkpoint: conv ``(M, C, K, K)``, fc ``(N, C*H*W)``."""
        g = self.geometry
        if isinstance(self.params, FcParams):
            return (g.m, g.c * g.h * g.w)
        return (g.m, g.c, g.kh, g.kw)

    def neuron_shape(self) -> tuple[int, ...]:
        """Shape of the per-neuron arrays in a checkpoint: conv ``(M, Ho, Wo)``, fc ``(N,)``."""
        return (self.out_shape[0],) if isinstance(self.params, FcParams) else self.out_shape


@dataclass
class PoolLayer:
    """A pooling layer: no weights and no neurons (it forwards every spike), so only its counters."""

    params: PoolParams
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    counters: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))  # inputs, 0, forwarded


def pool_layer(p: PoolParams, cur: tuple[int, int, int]) -> PoolLayer:
    """The pooling layer over input ``cur``; a partial window at the edge is an output cell of its own."""
    out = (cur[0], -(-cur[1] // p.size), -(-cur[2] // p.size))
    return PoolLayer(params=p, in_shape=cur, out_shape=out)


def weighted_layer(i: int, p: object, cur: tuple[int, int, int], rng: np.random.Generator) -> WeightedLayer:
    """A fresh layer over input ``cur``: weights drawn from ``rng``, every accumulator and counter 0."""
    if not isinstance(p, ConvParams | FcParams):
        msg = f"layer {i}: {p!r} is not a layer of Thiele's rule"
        raise TypeError(msg)
    c, h, w_ = cur
    if isinstance(p, ConvParams):
        kh = kw = p.kernel
        m = p.maps
        if h < kh or w_ < kw:
            msg = f"layer {i}: kernel {p.kernel} is larger than its input {cur}"
            raise ValueError(msg)
        out = (m, h - kh + 1, w_ - kw + 1)
        canonical = rng.normal(p.w_init_mean, p.w_init_std, size=(m, c, kh, kw))
    else:
        kh, kw, m = h, w_, p.neurons
        out = (m, 1, 1)
        canonical = rng.normal(p.w_init_mean, p.w_init_std, size=(m, c * h * w_))
    np.clip(canonical, 0.0, 1.0, out=canonical)  # then rounded to float32 by set_weights
    n_neurons = out[0] * out[1] * out[2]
    layer = WeightedLayer(
        params=p,
        in_shape=cur,
        out_shape=out,
        geometry=Geometry(c=c, h=h, w=w_, kh=kh, kw=kw, m=m),
        arrays=LayerArrays(
            w=np.empty(c * kh * kw * m, np.float32),
            v_learn=np.zeros(n_neurons, np.float32),
            v_inf=np.zeros(n_neurons, np.float32),
            pos_ref=np.zeros(out[1] * out[2], np.int64),
            map_ref=np.zeros(m, np.int64),
            last_in=np.zeros(c * h * w_, np.int64),
            lazy=np.zeros(1 + m + out[1] * out[2], np.int32),
            counters=np.zeros(3, np.int64),
        ),
    )
    set_weights(layer, canonical)
    return layer


def set_weights(layer: WeightedLayer, canonical: np.ndarray) -> None:
    """Load canonical weights into the kernel's layout (float32, kernel columns flipped)."""
    c, _h, _w, kh, kw, m = layer.geometry
    four = canonical.reshape(m, c, kh, kw)  # fc: (N, C*H*W) == (N, C, H, W) with kh = H, kw = W
    layer.arrays.w[:] = four[:, :, :, ::-1].transpose(1, 2, 3, 0).ravel().astype(np.float32)  # columns flipped


def get_weights(layer: WeightedLayer) -> np.ndarray:
    """The layer's weights in the canonical layout, as a new array."""
    c, _h, _w, kh, kw, m = layer.geometry
    four = layer.arrays.w.reshape(c, kh, kw, m)[:, :, ::-1, :].transpose(3, 0, 1, 2)
    return np.ascontiguousarray(four).reshape(layer.canonical_weight_shape())


def state_dict(layers: Sequence[WeightedLayer | PoolLayer | RuleLayer]) -> dict[str, np.ndarray]:
    """Copies of all learned and dynamic state, in canonical layouts (see ``Network.state_dict``)."""
    d: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        d[f"{i}.counters"] = layer.counters.copy()
        if isinstance(layer, PoolLayer):
            continue
        if not isinstance(layer, WeightedLayer):
            d.update({f"{i}.{name}": arr for name, arr in layer.state_arrays().items()})
            continue
        a = layer.arrays
        m = layer.out_shape[0]
        kernel.materialize_map_resets(a.v_learn, a.lazy, m)
        d[f"{i}.weight"] = get_weights(layer)
        nshape = layer.neuron_shape()
        ho, wo = layer.out_shape[1], layer.out_shape[2]
        ref = np.maximum(a.pos_ref[:, None], a.map_ref[None, :])  # (Ho*Wo, M)
        for name, flat in (("v_learn", a.v_learn), ("v_inf", a.v_inf), ("ref", ref)):
            arr = flat.reshape(ho, wo, m).transpose(2, 0, 1)
            d[f"{i}.{name}"] = np.ascontiguousarray(arr).reshape(nshape)
        d[f"{i}.map_ref"] = a.map_ref.copy()
        d[f"{i}.last_in"] = a.last_in.reshape(layer.in_shape).copy()
    return d


def _expected_state(
    layers: Sequence[WeightedLayer | PoolLayer | RuleLayer],
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    exp: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    f4, i8 = np.dtype(np.float32), np.dtype(np.int64)
    for i, layer in enumerate(layers):
        exp[f"{i}.counters"] = ((3,), i8)
        if isinstance(layer, PoolLayer):
            continue
        if not isinstance(layer, WeightedLayer):
            exp.update({f"{i}.{name}": spec for name, spec in layer.expected_state().items()})
            continue
        nshape = layer.neuron_shape()
        exp[f"{i}.weight"] = (layer.canonical_weight_shape(), f4)
        exp[f"{i}.v_learn"] = (nshape, f4)
        exp[f"{i}.v_inf"] = (nshape, f4)
        exp[f"{i}.ref"] = (nshape, i8)
        exp[f"{i}.map_ref"] = ((layer.out_shape[0],), i8)
        exp[f"{i}.last_in"] = (layer.in_shape, i8)
    return exp


def load_state_dict(layers: Sequence[WeightedLayer | PoolLayer | RuleLayer], state: Mapping[str, np.ndarray]) -> None:
    """Replace all state with ``state`` (see ``Network.load_state_dict``); nothing changes on an error."""
    exp = _expected_state(layers)
    missing = sorted(set(exp) - set(state))
    extra = sorted(set(state) - set(exp))
    if missing:
        msg = f"state lacks key(s) {missing} required by this network configuration"
        raise ValueError(msg)
    if extra:
        msg = f"state has key(s) {extra} that this network configuration does not have"
        raise ValueError(msg)
    arrays: dict[str, np.ndarray] = {}
    for key, (shape, dtype) in exp.items():
        arr = np.asarray(state[key])
        if arr.shape != shape:
            msg = f"state key {key!r} has shape {arr.shape}, this network expects {shape}"
            raise ValueError(msg)
        if arr.dtype.kind != dtype.kind:
            msg = f"state key {key!r} has dtype {arr.dtype}, this network expects {dtype}"
            raise ValueError(msg)
        if dtype.kind == "f" and not np.all(np.isfinite(arr)):
            msg = f"state key {key!r} holds non-finite values"
            raise ValueError(msg)
        arrays[key] = arr.astype(dtype, copy=True)
    pos_refs: dict[int, np.ndarray] = {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, WeightedLayer):
            continue
        m, ho, wo = layer.out_shape
        ref = arrays[f"{i}.ref"].reshape(m, ho * wo).T  # (positions, maps)
        map_ref = arrays[f"{i}.map_ref"]
        pos_refs[i] = ref.min(axis=1)  # every layer has >= 1 map
        if not np.array_equal(np.maximum(pos_refs[i][:, None], map_ref[None, :]), ref):
            msg = (
                f"state key '{i}.ref' is not max(position reset, map_ref) for every neuron: not a state "
                "this network's dynamics can reach"
            )
            raise ValueError(msg)
    for i, layer in enumerate(layers):
        layer.counters[:] = arrays[f"{i}.counters"]
        if isinstance(layer, PoolLayer):
            continue
        if not isinstance(layer, WeightedLayer):
            own = {name: arrays[f"{i}.{name}"] for name in layer.expected_state()}
            layer.load_state_arrays(own)
            continue
        a = layer.arrays
        m, ho, wo = layer.out_shape
        set_weights(layer, arrays[f"{i}.weight"])
        for name, target in (("v_learn", a.v_learn), ("v_inf", a.v_inf)):
            target[:] = arrays[f"{i}.{name}"].reshape(m, ho, wo).transpose(1, 2, 0).ravel()
        a.pos_ref[:] = pos_refs[i]
        a.map_ref[:] = arrays[f"{i}.map_ref"]
        a.last_in[:] = arrays[f"{i}.last_in"].ravel()
        a.lazy[:] = 0  # v_learn holds effective values (state_dict applies pending map resets)
