"""A trace-rule layer: its state, how it is built, run, and saved (the shell around ``kernel``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from nodes.stdp.records import Columns, Geometry
from nodes.stdp.shapes import ConvShape, FcShape

from . import kernel
from .params import TraceConvParams, TraceFcParams
from .records import TraceArrays, TraceConstants

#: State arrays per neuron (canonical shape (M, Ho, Wo), fc (N,)) and their dtypes.
_NEURON_ARRAYS = {
    "v_l": np.float64,
    "cur_l": np.float64,
    "t_l": np.int64,
    "ref_l": np.float64,
    "v_i": np.float64,
    "cur_i": np.float64,
    "t_i": np.int64,
    "ref_i": np.float64,
    "theta": np.float64,
    "t_theta": np.int64,
    "x_post": np.float64,
    "t_post": np.int64,
}


@functools.lru_cache(maxsize=256)
def _constants(p: TraceConvParams | TraceFcParams) -> TraceConstants:
    if isinstance(p, ConvShape):
        r_learn, r_inf = p.r_learn, p.r_inf
    else:
        r_learn, r_inf = 0, (0 if p.wta_inf else -1)
    return TraceConstants(
        th_learn=float(p.th_learn),
        th_inf=float(p.th_inf),
        v_reset=float(p.v_reset),
        tau_m=float(p.tau_m_us),
        tau_syn=float(p.tau_syn_us),
        t_ref=float(p.t_ref_us),
        tau_pre=float(p.tau_pre_us),
        tau_post=float(p.tau_post_us),
        a_ltp=float(p.a_ltp),
        a_ltd=float(p.a_ltd),
        x_tar=float(p.x_tar),
        theta_plus=float(p.theta_plus),
        tau_theta=float(p.tau_theta_us),
        theta_inf=bool(p.theta_inf),
        multiplicative=p.update == "multiplicative",
        wta_learn=bool(p.wta_learn),
        r_learn=r_learn,
        r_inf=r_inf,
    )


class TraceLayer:
    """A conv or fc layer of the trace rule (``nodes.stdp.rules.registry.RuleLayer``)."""

    def __init__(
        self,
        params: TraceConvParams | TraceFcParams,
        in_shape: tuple[int, int, int],
        out_shape: tuple[int, int, int],
        geometry: Geometry,
        arrays: TraceArrays,
    ) -> None:
        self.params = params
        self.in_shape = in_shape
        self.out_shape = out_shape
        self.geometry = geometry
        self.arrays = arrays

    @classmethod
    def build(cls, i: int, p: Any, cur: tuple[int, int, int], rng: np.random.Generator) -> TraceLayer:
        """Layer ``i`` over input ``cur``: weights drawn from N(mean, std) by ``rng``, clipped to [0, 1]
        (the same draws as a Thiele layer of that shape), everything else 0."""
        if not isinstance(p, TraceConvParams | TraceFcParams):
            msg = f"layer {i}: {p!r} is not a trace layer"
            raise TypeError(msg)
        c, h, w = cur
        if isinstance(p, TraceConvParams):
            if h < p.kernel or w < p.kernel:
                msg = f"layer {i}: kernel {p.kernel} is larger than its input {cur}"
                raise ValueError(msg)
            kh = kw = p.kernel
            m = p.maps
        else:
            assert isinstance(p, FcShape)
            kh, kw, m = h, w, p.neurons
        out = (m, h - kh + 1, w - kw + 1)
        weights = rng.normal(p.w_init_mean, p.w_init_std, size=m * c * kh * kw)
        np.clip(weights, 0.0, 1.0, out=weights)
        n = out[0] * out[1] * out[2]
        neuron = {name: np.zeros(n, dtype) for name, dtype in _NEURON_ARRAYS.items()}
        arrays = TraceArrays(
            w=weights,
            x_pre=np.zeros(c * h * w, np.float64),
            t_pre=np.zeros(c * h * w, np.int64),
            map_spikes=np.zeros(m, np.int64),
            counters=np.zeros(3, np.int64),
            **neuron,
        )
        return cls(p, cur, out, Geometry(c=c, h=h, w=w, kh=kh, kw=kw, m=m), arrays)

    @property
    def counters(self) -> np.ndarray:
        """``[inputs, learning spikes, inference spikes]`` (int64)."""
        return self.arrays.counters

    def run(self, cols: Columns, learning: bool) -> Columns:
        """The kernel over ``cols``, in as many calls as its output arrays need."""
        constants = _constants(self.params)
        n = len(cols[0])
        parts = []
        start = 0
        while True:
            t_in, x_in, y_in, c_in = (col[start:] for col in cols)
            t, x, y, c, count, consumed = kernel.trace_layer_run(
                t_in, x_in, y_in, c_in, self.arrays, self.geometry, constants, learning
            )
            parts.append((t[:count], x[:count], y[:count], c[:count]))
            start += consumed
            if start >= n:
                break
        if len(parts) == 1:
            return parts[0]
        t, x, y, c = (np.concatenate([part[k] for part in parts]) for k in range(4))
        return t, x, y, c

    def maps_learned(self) -> int:
        """Maps (fc: neurons) that have fired a learning spike since the layer was made."""
        return int(np.count_nonzero(self.arrays.map_spikes))

    def _weight_shape(self) -> tuple[int, ...]:
        g = self.geometry
        if isinstance(self.params, TraceFcParams):
            return (g.m, g.c * g.h * g.w)
        return (g.m, g.c, g.kh, g.kw)

    def _neuron_shape(self) -> tuple[int, ...]:
        return (self.out_shape[0],) if isinstance(self.params, TraceFcParams) else self.out_shape

    def expected_state(self) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
        """Shapes and dtypes of ``state_arrays``: ``weight``, the per-neuron arrays, the pre traces
        ``x_pre``/``t_pre`` ``(C, H, W)`` and ``map_spikes`` ``(M,)``."""
        exp: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {"weight": (self._weight_shape(), np.dtype(np.float64))}
        for name, dtype in _NEURON_ARRAYS.items():
            exp[name] = (self._neuron_shape(), np.dtype(dtype))
        exp["x_pre"] = (self.in_shape, np.dtype(np.float64))
        exp["t_pre"] = (self.in_shape, np.dtype(np.int64))
        exp["map_spikes"] = ((self.out_shape[0],), np.dtype(np.int64))
        return exp

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the state in canonical shapes (the kernel's layout is canonical already)."""
        return {
            name: getattr(self.arrays, "w" if name == "weight" else name).reshape(shape).copy()
            for name, (shape, _) in self.expected_state().items()
        }

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy ``arrays`` (checked against ``expected_state`` by the caller) into the state."""
        for name in self.expected_state():
            getattr(self.arrays, "w" if name == "weight" else name)[:] = np.asarray(arrays[name]).ravel()
