"""Slow, literal reference of the STDP network (semantics: ``nodes.stdp.kernel`` docstring).

Plain Python over canonical layouts, one event at a time, written to be read against the spec rather
than to be fast:

* conv neurons are ``(m, y, x)``, fc neurons ``i``; weights ``W[m, c, ky, kx]`` / ``W[i, j]``;
* whole-map and whole-layer resets are done eagerly (every neuron of the map is written), not with
  the kernel's lazy stamps, so agreement also checks the lazy scheme;
* learning and inference spikes are resolved by repeatedly scanning for the largest accumulator
  still above threshold (ties: lowest flat index), not by a sort;
* fc is its own code path, not a conv in disguise;
* numbers as in the kernel: float32 weights and accumulators (numpy float32 scalar additions), the
  STDP update computed on Python floats (float64) and rounded to float32 when stored.

``map_ref`` is kept only as a record to compare with the kernel: conv ``map_ref[m]`` = counter of map
``m``'s last learning spike, fc ``map_ref[i]`` = counter of neuron ``i``'s last learning spike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nodes.stdp.layers import ConvParams, FcParams, PoolParams
from pipeline.events import SPIKE_DTYPE


class _RefConv:
    def __init__(self, p: ConvParams, in_shape: tuple[int, int, int], rng: np.random.Generator) -> None:
        self.p = p
        self.C, self.H, self.W = in_shape
        self.K = p.kernel
        self.M = p.maps
        self.Ho = self.H - self.K + 1
        self.Wo = self.W - self.K + 1
        self.out_shape = (self.M, self.Ho, self.Wo)
        w = rng.normal(p.w_init_mean, p.w_init_std, size=(self.M, self.C, self.K, self.K))
        self.weight = np.clip(w, 0.0, 1.0).astype(np.float32)
        self.v_learn = np.zeros(self.out_shape, np.float32)
        self.v_inf = np.zeros(self.out_shape, np.float32)
        self.ref = np.zeros(self.out_shape, np.int64)
        self.map_ref = np.zeros(self.M, np.int64)
        self.last_in = np.zeros(in_shape, np.int64)
        self.n = 0
        self.n_learn = 0
        self.n_inf = 0

    def step(self, t: int, x: int, y: int, c: int, learning: bool) -> list[tuple[int, int, int, int]]:
        p = self.p
        self.n += 1
        n = self.n
        self.last_in[c, y, x] = n
        touched = []
        for m in range(self.M):
            for oy in range(self.Ho):
                for ox in range(self.Wo):
                    if oy <= y < oy + self.K and ox <= x < ox + self.K:
                        touched.append((m, oy, ox))
        for m, oy, ox in touched:
            w = self.weight[m, c, y - oy, x - ox]
            if learning:
                self.v_learn[m, oy, ox] += w
            self.v_inf[m, oy, ox] += w

        if learning:
            while True:
                best = None
                for m, oy, ox in touched:  # touched is in flat-index order
                    v = self.v_learn[m, oy, ox]
                    if v >= p.th_learn and (best is None or v > self.v_learn[best]):
                        best = (m, oy, ox)
                if best is None:
                    break
                m, oy, ox = best
                ref = self.ref[m, oy, ox]
                a_plus = p.a_plus_effective
                for cc in range(self.C):
                    for ky in range(self.K):
                        for kx in range(self.K):
                            w = float(self.weight[m, cc, ky, kx])
                            if self.last_in[cc, oy + ky, ox + kx] > ref:
                                w = w + a_plus * math.exp(-p.beta_plus * w)
                            else:
                                w = w + p.a_minus
                            self.weight[m, cc, ky, kx] = min(max(w, 0.0), 1.0)
                self.n_learn += 1
                # own reset and intra-map WTA: the whole map
                self.v_learn[m, :, :] = 0.0
                self.ref[m, :, :] = n
                self.map_ref[m] = n
                # inter-map WTA: all maps within Chebyshev distance r_learn
                for mm in range(self.M):
                    for py in range(self.Ho):
                        for px in range(self.Wo):
                            if max(abs(py - oy), abs(px - ox)) <= p.r_learn:
                                self.v_learn[mm, py, px] = 0.0
                                self.ref[mm, py, px] = n

        out = []
        while True:
            best = None
            for m, oy, ox in touched:
                v = self.v_inf[m, oy, ox]
                if v >= p.th_inf and (best is None or v > self.v_inf[best]):
                    best = (m, oy, ox)
            if best is None:
                break
            m, oy, ox = best
            self.v_inf[m, oy, ox] = 0.0
            out.append((t, ox, oy, m))
            self.n_inf += 1
            if p.r_inf >= 0:
                for mm in range(self.M):
                    if mm == m:
                        continue
                    for py in range(self.Ho):
                        for px in range(self.Wo):
                            if max(abs(py - oy), abs(px - ox)) <= p.r_inf:
                                self.v_inf[mm, py, px] = 0.0
        return out

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            prefix + "weight": self.weight.copy(),
            prefix + "v_learn": self.v_learn.copy(),
            prefix + "v_inf": self.v_inf.copy(),
            prefix + "ref": self.ref.copy(),
            prefix + "map_ref": self.map_ref.copy(),
            prefix + "last_in": self.last_in.copy(),
            prefix + "counters": np.array([self.n, self.n_learn, self.n_inf], np.int64),
        }


class _RefFc:
    def __init__(self, p: FcParams, in_shape: tuple[int, int, int], rng: np.random.Generator) -> None:
        self.p = p
        self.in_shape = in_shape
        self.C, self.H, self.W = in_shape
        self.N = p.neurons
        self.J = self.C * self.H * self.W
        self.out_shape = (self.N, 1, 1)
        w = rng.normal(p.w_init_mean, p.w_init_std, size=(self.N, self.J))
        self.weight = np.clip(w, 0.0, 1.0).astype(np.float32)
        self.v_learn = np.zeros(self.N, np.float32)
        self.v_inf = np.zeros(self.N, np.float32)
        self.ref = np.zeros(self.N, np.int64)
        self.map_ref = np.zeros(self.N, np.int64)
        self.last_in = np.zeros(self.J, np.int64)
        self.n = 0
        self.n_learn = 0
        self.n_inf = 0

    def step(self, t: int, x: int, y: int, c: int, learning: bool) -> list[tuple[int, int, int, int]]:
        p = self.p
        self.n += 1
        n = self.n
        j = (c * self.H + y) * self.W + x
        self.last_in[j] = n
        for i in range(self.N):
            if learning:
                self.v_learn[i] += self.weight[i, j]
            self.v_inf[i] += self.weight[i, j]
        if learning:
            best = None
            for i in range(self.N):
                v = self.v_learn[i]
                if v >= p.th_learn and (best is None or v > self.v_learn[best]):
                    best = i
            if best is not None:  # one spike resets the whole layer, so at most one per event
                i = best
                ref = self.ref[i]
                a_plus = p.a_plus_effective
                for jj in range(self.J):
                    w = float(self.weight[i, jj])
                    w = w + a_plus * math.exp(-p.beta_plus * w) if self.last_in[jj] > ref else w + p.a_minus
                    self.weight[i, jj] = min(max(w, 0.0), 1.0)
                self.n_learn += 1
                self.v_learn[:] = 0.0
                self.ref[:] = n
                self.map_ref[i] = n
        out = []
        while True:
            best = None
            for i in range(self.N):
                v = self.v_inf[i]
                if v >= p.th_inf and (best is None or v > self.v_inf[best]):
                    best = i
            if best is None:
                break
            self.v_inf[best] = 0.0
            out.append((t, 0, 0, best))
            self.n_inf += 1
            if p.wta_inf:
                self.v_inf[:] = 0.0
        return out

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            prefix + "weight": self.weight.copy(),
            prefix + "v_learn": self.v_learn.copy(),
            prefix + "v_inf": self.v_inf.copy(),
            prefix + "ref": self.ref.copy(),
            prefix + "map_ref": self.map_ref.copy(),
            prefix + "last_in": self.last_in.reshape(self.in_shape).copy(),
            prefix + "counters": np.array([self.n, self.n_learn, self.n_inf], np.int64),
        }


class _RefPool:
    def __init__(self, p: PoolParams, in_shape: tuple[int, int, int]) -> None:
        self.s = p.size
        c, h, w = in_shape
        self.out_shape = (c, math.ceil(h / self.s), math.ceil(w / self.s))
        self.n = 0

    def step(self, t: int, x: int, y: int, c: int, learning: bool) -> list[tuple[int, int, int, int]]:
        self.n += 1
        return [(t, x // self.s, y // self.s, c)]

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix + "counters": np.array([self.n, 0, self.n], np.int64)}


class ReferenceNetwork:
    """Same constructor and the same weight initialisation (rng draws in layer order) as ``Network``."""

    def __init__(self, input_shape: tuple[int, int, int], layers: list[Any], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.layers: list[Any] = []
        cur = tuple(input_shape)
        for p in layers:
            if isinstance(p, ConvParams):
                layer: Any = _RefConv(p, cur, rng)  # type: ignore[arg-type]
            elif isinstance(p, FcParams):
                layer = _RefFc(p, cur, rng)  # type: ignore[arg-type]
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
            for t, x, y, c in current:  # depth-first per event equals layer by layer (no feedback)
                nxt.extend(layer.step(t, x, y, c, self.learning))
            arr = np.zeros(len(nxt), SPIKE_DTYPE)
            for k, (t, x, y, c) in enumerate(nxt):
                arr[k] = (t, x, y, c)
            outputs.append(arr)
            current = nxt
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        d: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            d.update(layer.state(f"{i}."))
        return d
