"""Slow, literal reference of the trace rule (semantics: ``nodes.stdp.rules.trace.kernel`` docstring).

Written against the spec, deliberately unlike the kernel:

* every neuron and every trace of a layer is advanced eagerly to each input's time (the kernel
  advances only the neurons an input reaches, lazily, over the whole gap since their last update);
* the membrane and current are advanced with the matrix exponential of the linear system
  ``d/dt [v, I] = [[-1/tau_m, 1], [0, -1/tau_syn]] [v, I]`` (``scipy.linalg.expm``), not with the
  kernel's closed form, so agreement checks that closed form (also where ``tau_m == tau_syn``);
* spikes are resolved by repeatedly scanning for the largest potential still at threshold;
* fc is its own code path with weights ``W[i, j]``.

Because the two integrate the same ODE by different (exact) formulas, they agree to rounding, not bit
for bit; tests compare spikes exactly and the floating state with a tolerance.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy.linalg import expm

from nodes.stdp.rules.trace.params import TraceConvParams, TraceFcParams
from nodes.stdp.shapes import PoolParams
from pipeline.events import SPIKE_DTYPE


@functools.lru_cache(maxsize=4096)
def _flow(h: float, tau_m: float, tau_syn: float) -> tuple[float, float, float]:
    """The entries ``(v<-v, v<-I, I<-I)`` of ``expm(A h)`` (cached: eagerly, every neuron shares h)."""
    a = np.array([[-1.0 / tau_m, 1.0], [0.0, -1.0 / tau_syn]])
    e = expm(a * h)
    return float(e[0, 0]), float(e[0, 1]), float(e[1, 1])


def _propagate(v: float, cur: float, h: float, tau_m: float, tau_syn: float) -> tuple[float, float]:
    """``(v, I)`` after ``h`` µs of free evolution (no input, not refractory)."""
    if h <= 0:
        return v, cur
    if tau_syn == 0:
        return v * math.exp(-h / tau_m), 0.0
    vv, vi, ii = _flow(float(h), tau_m, tau_syn)
    return vv * v + vi * cur, ii * cur


class _Population:
    """One population (learning or inference) of a layer's neurons, shape ``shape``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.v = np.zeros(shape)
        self.cur = np.zeros(shape)
        self.ref_end = np.zeros(shape)  # refractory until (µs); v frozen while t < ref_end

    def advance_all(self, t_prev: int, t: int, tau_m: float, tau_syn: float) -> None:
        for idx in np.ndindex(self.v.shape):
            v, cur, r = float(self.v[idx]), float(self.cur[idx]), float(self.ref_end[idx])
            if r > t_prev:  # refractory for part or all of (t_prev, t]: v frozen, I decays
                frozen = min(r, float(t)) - t_prev
                _, cur = _propagate(0.0, cur, frozen, tau_m, tau_syn)
                v, cur = _propagate(v, cur, t - (t_prev + frozen), tau_m, tau_syn)
            else:
                v, cur = _propagate(v, cur, t - t_prev, tau_m, tau_syn)
            self.v[idx], self.cur[idx] = v, cur

    def integrate(self, idx: tuple[int, ...], w: float, t: int, tau_syn: float) -> None:
        if tau_syn > 0:
            self.cur[idx] += w / tau_syn
        elif t >= self.ref_end[idx]:
            self.v[idx] += w


class _RefTraceLayer:
    """A conv layer ``(M, Ho, Wo)`` or an fc layer ``(N,)``; reached neurons listed explicitly."""

    def __init__(self, p: Any, in_shape: tuple[int, int, int], rng: np.random.Generator) -> None:
        self.p = p
        self.C, self.H, self.W = in_shape
        self.fc = isinstance(p, TraceFcParams)
        if self.fc:
            self.M = p.neurons
            self.out_shape: tuple[int, int, int] = (self.M, 1, 1)
            self.nshape: tuple[int, ...] = (self.M,)
            w = rng.normal(p.w_init_mean, p.w_init_std, size=(self.M, self.C * self.H * self.W))
        else:
            self.M, self.K = p.maps, p.kernel
            self.Ho, self.Wo = self.H - self.K + 1, self.W - self.K + 1
            self.out_shape = (self.M, self.Ho, self.Wo)
            self.nshape = self.out_shape
            w = rng.normal(p.w_init_mean, p.w_init_std, size=(self.M, self.C, self.K, self.K))
        self.weight = np.clip(w, 0.0, 1.0)
        self.learn = _Population(self.nshape)
        self.inf = _Population(self.nshape)
        self.x_post = np.zeros(self.nshape)
        self.theta = np.zeros(self.nshape)  # adaptive threshold offsets, decayed eagerly with the traces
        self.fired: list[tuple[int, ...]] = []  # this input's learning spikes, whose thetas rise last
        self.x_pre = np.zeros((self.C, self.H, self.W))
        self.map_spikes = np.zeros(self.M, np.int64)
        self.t_now = 0  # the inference neurons' time
        self.t_learn = 0  # the learning neurons' and traces' time
        self.counters = np.zeros(3, np.int64)

    # -- geometry -----------------------------------------------------------------------------
    def _reached(self, x: int, y: int, c: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(neuron index, weight index) of every neuron the input reaches, canonical order."""
        if self.fc:
            j = (c * self.H + y) * self.W + x
            return [((i,), (i, j)) for i in range(self.M)]
        out = []
        for m in range(self.M):
            for oy in range(self.Ho):
                for ox in range(self.Wo):
                    if oy <= y < oy + self.K and ox <= x < ox + self.K:
                        out.append(((m, oy, ox), (m, c, y - oy, x - ox)))
        return out

    def _synapses(self, idx: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, int, int]]]:
        """(weight index, input position) of every synapse of neuron ``idx``."""
        if self.fc:
            return [
                ((idx[0], (c * self.H + y) * self.W + x), (c, y, x))
                for c in range(self.C)
                for y in range(self.H)
                for x in range(self.W)
            ]
        m, oy, ox = idx
        return [
            ((m, c, ky, kx), (c, oy + ky, ox + kx))
            for c in range(self.C)
            for ky in range(self.K)
            for kx in range(self.K)
        ]

    def _map_of(self, idx: tuple[int, ...]) -> int:
        return idx[0]

    def _region(self, idx: tuple[int, ...], r: int) -> list[tuple[int, ...]]:
        """Every neuron of every map at the positions within Chebyshev distance ``r`` of ``idx``."""
        if self.fc:
            return [(i,) for i in range(self.M)]
        _, oy, ox = idx
        return [
            (m, py, px)
            for m in range(self.M)
            for py in range(self.Ho)
            for px in range(self.Wo)
            if abs(py - oy) <= r and abs(px - ox) <= r
        ]

    # -- one input ------------------------------------------------------------------------------
    def step(self, t: int, x: int, y: int, c: int, learning: bool) -> list[tuple[int, int, int, int]]:
        p = self.p
        tau_m, tau_syn = p.tau_m_us, p.tau_syn_us
        if learning:  # learning off leaves the learning neurons and the traces where they were
            self.learn.advance_all(self.t_learn, t, tau_m, tau_syn)
            self.x_post *= math.exp(-(t - self.t_learn) / p.tau_post_us)
            self.x_pre *= math.exp(-(t - self.t_learn) / p.tau_pre_us)
            self.theta *= math.exp(-(t - self.t_learn) / p.tau_theta_us)
            self.t_learn = t
        self.inf.advance_all(self.t_now, t, tau_m, tau_syn)
        self.t_now = t
        self.counters[0] += 1
        if learning:
            self.x_pre[c, y, x] += 1.0
        reached = self._reached(x, y, c)
        for idx, widx in reached:
            if learning:
                self.learn.integrate(idx, float(self.weight[widx]), t, tau_syn)
            self.inf.integrate(idx, float(self.weight[widx]), t, tau_syn)
        out: list[tuple[int, int, int, int]] = []
        if learning:
            for idx, widx in reached:
                w = float(self.weight[widx])
                dw = p.a_ltd * self.x_post[idx] * (w if p.update == "multiplicative" else 1.0)
                self.weight[widx] = min(1.0, max(0.0, w - dw))
            self._fire(self.learn, [i for i, _ in reached], p.th_learn, t, learn=True, out=out)
        self._fire(self.inf, [i for i, _ in reached], p.th_inf, t, learn=False, out=out)
        for idx in self.fired:  # after the inference spikes: they see the thresholds from before this input
            self.theta[idx] += p.theta_plus
        self.fired = []
        return out

    def _theta_now(self, t: int) -> np.ndarray:
        """``theta`` at ``t``: it decays with learning off too, from the last learning input's time."""
        return self.theta * math.exp(-(t - self.t_learn) / self.p.tau_theta_us)

    def _fire(
        self, pop: _Population, reached: list[tuple[int, ...]], th: float, t: int, learn: bool, out: list[Any]
    ) -> None:
        p = self.p
        uses_theta = learn or p.theta_inf
        while True:
            theta = self._theta_now(t) if uses_theta else np.zeros(self.nshape)
            best = None
            for idx in reached:  # canonical order: the first of equal values wins
                if pop.v[idx] >= th + theta[idx] and (best is None or pop.v[idx] > pop.v[best]):
                    best = idx
            if best is None:
                return
            m = self._map_of(best)
            if learn:
                for widx, (cc, yy, xx) in self._synapses(best):
                    w = float(self.weight[widx])
                    dw = p.a_ltp * (self.x_pre[cc, yy, xx] - p.x_tar)
                    if p.update == "multiplicative":
                        dw *= (1.0 - w) if dw > 0 else w
                    self.weight[widx] = min(1.0, max(0.0, w + dw))
                self.x_post[best] += 1.0
                self.fired.append(best)
                if p.wta_learn:
                    if self.fc:
                        wiped = [(i,) for i in range(self.M)]
                    else:
                        wiped = [(m, py, px) for py in range(self.Ho) for px in range(self.Wo)]
                        wiped += self._region(best, p.r_learn)
                    for idx in wiped:
                        pop.v[idx] = 0.0
                        pop.cur[idx] = 0.0
                self.map_spikes[m] += 1
                self.counters[1] += 1
            else:
                r_inf = (0 if p.wta_inf else -1) if self.fc else p.r_inf
                if r_inf >= 0:
                    for idx in self._region(best, r_inf):
                        if self._map_of(idx) != m:
                            pop.v[idx] = 0.0
                            pop.cur[idx] = 0.0
                oy, ox = (0, 0) if self.fc else (best[1], best[2])
                out.append((t, ox, oy, m))
                self.counters[2] += 1
            pop.v[best] = p.v_reset
            pop.ref_end[best] = t + p.t_ref_us

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            prefix + "weight": self.weight.copy(),
            prefix + "v_l": self.learn.v.copy(),
            prefix + "v_i": self.inf.v.copy(),
            prefix + "theta": self.theta.copy(),
            prefix + "map_spikes": self.map_spikes.copy(),
            prefix + "counters": self.counters.copy(),
        }


class _RefPool:
    def __init__(self, p: PoolParams, in_shape: tuple[int, int, int]) -> None:
        self.s = p.size
        self.out_shape = (in_shape[0], -(-in_shape[1] // p.size), -(-in_shape[2] // p.size))
        self.n = 0

    def step(self, t: int, x: int, y: int, c: int, learning: bool) -> list[tuple[int, int, int, int]]:
        self.n += 1
        return [(t, x // self.s, y // self.s, c)]

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix + "counters": np.array([self.n, 0, self.n], np.int64)}


class TraceReferenceNetwork:
    """Same constructor and weight initialisation (rng draws in layer order) as ``Network``."""

    def __init__(self, input_shape: tuple[int, int, int], layers: list[Any], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.layers: list[Any] = []
        cur = tuple(input_shape)
        for p in layers:
            if isinstance(p, TraceConvParams | TraceFcParams):
                layer: Any = _RefTraceLayer(p, cur, rng)  # type: ignore[arg-type]
            else:
                layer = _RefPool(p, cur)  # type: ignore[arg-type]
            self.layers.append(layer)
            cur = layer.out_shape
        self.learning = True

    def process_all_layers(self, spikes: np.ndarray) -> list[np.ndarray]:
        current = [(int(s["t"]), int(s["x"]), int(s["y"]), int(s["c"])) for s in spikes]
        outputs = []
        for layer in self.layers:
            nxt: list[tuple[int, int, int, int]] = []
            for t, x, y, c in current:
                nxt.extend(layer.step(t, x, y, c, self.learning))
            arr = np.zeros(len(nxt), SPIKE_DTYPE)
            for k, row in enumerate(nxt):
                arr[k] = row
            outputs.append(arr)
            current = nxt
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        d: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            d.update(layer.state(f"{i}."))
        return d
