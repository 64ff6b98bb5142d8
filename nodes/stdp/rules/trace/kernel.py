"""Numba kernels of the trace rule: LIF neurons, exact decay between events, trace-based pair STDP.

Semantics (binding for kernel and ``tests/reference/trace_reference.py``)
-------------------------------------------------------------------------
* Neurons: ``dv/dt = -v / tau_m + I``, ``dI/dt = -I / tau_syn``; an input of weight ``w`` adds
  ``w / tau_syn`` to ``I`` (current-based synapse) or, with ``tau_syn = 0``, ``w`` to ``v`` (delta
  synapse). Between two events the state is advanced by the closed-form solution over their time
  difference (``advance``), for ``tau_m != tau_syn`` and ``tau_m == tau_syn`` alike: no clock grid.
* Threshold crossings are tested at the layer's input times only (event-driven, as Thiele's kernel):
  with a delta synapse that is exact (``v`` only rises at inputs); with a current-based synapse ``v``
  can still rise after an input, and a crossing between inputs is seen at the neuron's next input.
* Refractory: after its own spike a neuron's ``v`` is ``v_reset`` and frozen (no leak, inputs to ``v``
  ignored) while ``t < t_spike + t_ref``; its current keeps decaying and integrating.
* Two populations share the weights, as in Thiele's rule: learning neurons (threshold ``th_learn``,
  their spikes drive STDP and the learning WTA) and inference neurons (``th_inf``, their spikes are the
  output). Learning off: the learning neurons, traces and weights are untouched.
* An input ``(t, x, y, c)``, in order: (1) the counter ``n`` += 1; (2) learning: the pre trace of its
  position decays to ``t`` and += 1; (3) every neuron it reaches (conv: all maps at the output positions whose
  window holds it; fc: all) is advanced to ``t`` and integrates the input, learning population first
  (when learning), both with the weights before this input's depression; (4) learning: for each
  reached neuron in canonical order ``(m, oy, ox)``, its synapse from this input is depressed by
  ``a_ltd * x_post`` (its post trace at ``t``; multiplicative: times ``w``), clipped to [0, 1];
  (5) learning: the reached learning neurons with ``v >= th_learn + theta`` are visited by decreasing
  ``v`` (ties: lowest canonical index); each still at its threshold fires: every synapse of its kernel
  changes by ``dw = a_ltp * (x_pre - x_tar)`` (its input position's pre trace at ``t``;
  multiplicative: times ``1 - w`` when ``dw > 0``, else times ``w``), clipped; its post trace decays
  to ``t`` and += 1; with ``wta_learn`` every neuron of its
  map and of every map at the positions within ``r_learn`` gets ``v = 0, I = 0``; then the neuron
  itself ``v = v_reset`` and is refractory until ``t + t_ref``; (6) the reached inference neurons with
  ``v >= th_inf`` (with ``theta_inf``: ``th_inf + theta``) are visited the same way; each still at its
  threshold fires an output spike
  ``(t, ox, oy, m)``, gets ``v = v_reset``, refractory until ``t + t_ref``, and when ``r_inf >= 0`` the
  *other* maps' inference neurons at positions within ``r_inf`` get ``v = 0, I = 0``; (7) learning:
  the ``theta`` of each neuron that fired a learning spike in (5) rises by ``theta_plus`` (after (6),
  so that the inference neuron is tested against the threshold from before the spike, as a single
  neuron's would be).
* Adaptive threshold: a neuron's ``theta`` at ``t`` is ``theta * exp(-(t - t_theta) / tau_theta)`` from its
  last raise (exact, lazy; it decays with learning off too and only learning spikes raise it). It is
  added to the learning threshold, and to the inference threshold with ``theta_inf``. Thresholds are
  still tested at input times only: exact while ``th / tau_m > theta / tau_theta`` (near threshold the
  potential then falls faster than the threshold, so no crossing happens between inputs).
* Numbers: float64 throughout; times are the events' int64 µs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    from nodes.stdp.records import Geometry

    from .records import TraceArrays, TraceConstants


@numba.njit(cache=True, nogil=True)
def kernel_gain(h: float, tau_m: float, tau_syn: float) -> float:
    """How much ``v`` gains over ``h`` µs per unit of current at the start: ``int_0^h e^{-(h-s)/tau_m}
    e^{-s/tau_syn} ds``, written with ``expm1`` so that close time constants lose no digits."""
    a = 1.0 / tau_syn - 1.0 / tau_m
    if a == 0.0:
        return h * math.exp(-h / tau_m)
    return math.exp(-h / tau_m) * (-math.expm1(-a * h)) / a


@numba.njit(cache=True, nogil=True)
def advance(v: float, cur: float, t0: int, ref_end: float, t: int, tau_m: float, tau_syn: float) -> tuple[float, float]:
    """``(v, I)`` at ``t`` from their values at ``t0``: ``v`` frozen until ``ref_end``, then the exact
    solution of the two linear ODEs; ``I`` decays the whole time (delta synapse: stays 0)."""
    h_all = float(t - t0)
    if h_all <= 0.0:
        return v, cur
    start = float(t0) if ref_end <= t0 else min(ref_end, float(t))
    h = float(t) - start
    if tau_syn > 0.0:
        cur_s = cur * math.exp(-(start - t0) / tau_syn)
        v_new = v * math.exp(-h / tau_m) + cur_s * kernel_gain(h, tau_m, tau_syn)
        return v_new, cur_s * math.exp(-h / tau_syn)
    return v * math.exp(-h / tau_m), 0.0


@numba.njit(cache=True, nogil=True)
def _flow(h: float, tau_m: float, tau_syn: float) -> tuple[float, float, float]:
    """The factors of a free gap of ``h`` µs: ``v <- vv * v + vi * I``, ``I <- ii * I``, exactly the
    numbers ``advance`` computes for a neuron that is not refractory."""
    em = math.exp(-h / tau_m)
    if tau_syn > 0.0:
        return em, kernel_gain(h, tau_m, tau_syn), math.exp(-h / tau_syn)
    return em, 0.0, 0.0


@numba.njit(cache=True, nogil=True)
def _clip01(w: float) -> float:
    return 0.0 if w < 0.0 else (1.0 if w > 1.0 else w)


@numba.njit(cache=True, nogil=True)
def _reset_region(
    v: np.ndarray,
    cur: np.ndarray,
    tl: np.ndarray,
    t: int,
    m_keep: int,
    oy: int,
    ox: int,
    r: int,
    ho: int,
    wo: int,
    m_count: int,
) -> None:
    """``v = 0, I = 0`` (now current at ``t``) for every map but ``m_keep`` (-1: none kept) at the
    positions within Chebyshev distance ``r`` of ``(oy, ox)``."""
    for py in range(max(0, oy - r), min(ho - 1, oy + r) + 1):
        for px in range(max(0, ox - r), min(wo - 1, ox + r) + 1):
            for mm in range(m_count):
                if mm != m_keep:
                    k = (mm * ho + py) * wo + px
                    v[k] = 0.0
                    cur[k] = 0.0
                    tl[k] = t


@numba.njit(cache=True, nogil=True)
def _theta_at(theta: np.ndarray, t_theta: np.ndarray, idx: int, t: int, tau_theta: float) -> float:
    """Neuron ``idx``'s adaptive threshold offset at ``t`` (0 without one: no exp on that path)."""
    th = float(theta[idx])
    if th == 0.0:
        return 0.0
    return th * math.exp(-float(t - t_theta[idx]) / tau_theta)


@numba.njit(cache=True, nogil=True)
def _order(cand: np.ndarray, count: int, v: np.ndarray) -> None:
    """Sort ``cand[:count]`` by decreasing ``v[cand]``, ties by increasing index (insertion sort: the
    candidates of one input are few)."""
    for i in range(1, count):
        k = cand[i]
        j = i - 1
        while j >= 0 and (v[cand[j]] < v[k] or (v[cand[j]] == v[k] and cand[j] > k)):
            cand[j + 1] = cand[j]
            j -= 1
        cand[j + 1] = k


@numba.njit(cache=True, nogil=True)
def trace_layer_run(
    in_t: np.ndarray,
    in_x: np.ndarray,
    in_y: np.ndarray,
    in_c: np.ndarray,
    a: TraceArrays,
    geometry: Geometry,
    k: TraceConstants,
    learning: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Run one trace layer over a batch of input spikes, mutating ``a`` in place (semantics above).

    Returns ``(t, x, y, c, count, consumed)`` as ``nodes.stdp.kernel.weighted_layer_run`` does: the
    first ``count`` output spikes are those of the first ``consumed`` inputs; the caller runs the rest
    in another call when ``consumed < len(in_t)``.
    """
    c_count, h_in, w_in, kh, kw, m_count = geometry
    ho = h_in - kh + 1
    wo = w_in - kw + 1
    n_events = in_t.shape[0]
    most = min(kh, ho) * min(kw, wo) * m_count
    cap = 4 * n_events + most
    out_t = np.empty(cap, np.int64)
    out_x = np.empty(cap, np.uint16)
    out_y = np.empty(cap, np.uint16)
    out_c = np.empty(cap, np.uint16)
    n_out = 0
    cand_l = np.empty(most, np.int64)
    cand_i = np.empty(most, np.int64)
    touched = np.empty(most, np.int64)
    touched_w = np.empty(most, np.int64)
    raised = np.empty(most, np.int64)  # the learning spikes of one input, whose thetas rise in (7)
    raised_theta = np.empty(most, np.float64)
    syn = kh * kw
    ksize = c_count * syn
    consumed = n_events
    for e in range(n_events):
        if n_out + most > cap:
            consumed = e
            break
        t = in_t[e]
        c = int(in_c[e])
        y = int(in_y[e])
        x = int(in_x[e])
        a.counters[0] += 1
        j_in = (c * h_in + y) * w_in + x
        if learning:
            a.x_pre[j_in] = a.x_pre[j_in] * math.exp(-float(t - a.t_pre[j_in]) / k.tau_pre) + 1.0
            a.t_pre[j_in] = t
        # (3) the reached neurons, canonical order
        n_touch = 0
        for m in range(m_count):
            for oy in range(max(0, y - kh + 1), min(y, ho - 1) + 1):
                for ox in range(max(0, x - kw + 1), min(x, wo - 1) + 1):
                    touched[n_touch] = (m * ho + oy) * wo + ox
                    touched_w[n_touch] = m * ksize + c * syn + (y - oy) * kw + (x - ox)
                    n_touch += 1
        nl = 0
        ni = 0
        n_raised = 0
        # most reached neurons were last updated at the same time (an fc layer: all of them), so the
        # decay factors of one gap are computed once per input and reused (identical numbers)
        memo_t0 = np.int64(-1)
        memo_vv = memo_vi = memo_ii = 0.0
        for q in range(n_touch):
            idx = touched[q]
            wv = a.w[touched_w[q]]
            if learning:
                t0 = a.t_l[idx]
                if t0 == memo_t0 and a.ref_l[idx] <= t0:  # the decay over the same gap as the last neuron's
                    v, cur = a.v_l[idx] * memo_vv + a.cur_l[idx] * memo_vi, a.cur_l[idx] * memo_ii
                else:
                    v, cur = advance(a.v_l[idx], a.cur_l[idx], t0, a.ref_l[idx], t, k.tau_m, k.tau_syn)
                    if a.ref_l[idx] <= t0:
                        memo_t0 = t0
                        memo_vv, memo_vi, memo_ii = _flow(float(t - t0), k.tau_m, k.tau_syn)
                if k.tau_syn > 0.0:
                    cur += wv / k.tau_syn
                elif t >= a.ref_l[idx]:
                    v += wv
                a.v_l[idx] = v
                a.cur_l[idx] = cur
                a.t_l[idx] = t
                if v >= k.th_learn and v >= k.th_learn + _theta_at(a.theta, a.t_theta, idx, t, k.tau_theta):
                    cand_l[nl] = idx
                    nl += 1
            t0 = a.t_i[idx]
            if t0 == memo_t0 and a.ref_i[idx] <= t0:
                v, cur = a.v_i[idx] * memo_vv + a.cur_i[idx] * memo_vi, a.cur_i[idx] * memo_ii
            else:
                v, cur = advance(a.v_i[idx], a.cur_i[idx], t0, a.ref_i[idx], t, k.tau_m, k.tau_syn)
                if a.ref_i[idx] <= t0:
                    memo_t0 = t0
                    memo_vv, memo_vi, memo_ii = _flow(float(t - t0), k.tau_m, k.tau_syn)
            if k.tau_syn > 0.0:
                cur += wv / k.tau_syn
            elif t >= a.ref_i[idx]:
                v += wv
            a.v_i[idx] = v
            a.cur_i[idx] = cur
            a.t_i[idx] = t
            if v >= k.th_inf and (
                not k.theta_inf or v >= k.th_inf + _theta_at(a.theta, a.t_theta, idx, t, k.tau_theta)
            ):
                cand_i[ni] = idx
                ni += 1
        if learning:
            # (4) depression of the synapses from this input, by each reached neuron's post trace
            for q in range(n_touch):
                idx = touched[q]
                xp = a.x_post[idx]
                if xp == 0.0:
                    continue
                xp *= math.exp(-float(t - a.t_post[idx]) / k.tau_post)
                wi = touched_w[q]
                wv = a.w[wi]
                dw = k.a_ltd * xp * (wv if k.multiplicative else 1.0)
                a.w[wi] = _clip01(wv - dw)
            # (5) learning spikes
            _order(cand_l, nl, a.v_l)
            for q in range(nl):
                idx = cand_l[q]
                theta = _theta_at(a.theta, a.t_theta, idx, t, k.tau_theta)
                if a.v_l[idx] < k.th_learn + theta:
                    continue
                m = idx // (ho * wo)
                pos = idx - m * ho * wo
                oy = pos // wo
                ox = pos - oy * wo
                wb = m * ksize
                for cc in range(c_count):
                    for ky in range(kh):
                        for kx in range(kw):
                            j = (cc * h_in + oy + ky) * w_in + ox + kx
                            xq = a.x_pre[j]
                            if xq != 0.0:
                                xq *= math.exp(-float(t - a.t_pre[j]) / k.tau_pre)
                            wi = wb + cc * syn + ky * kw + kx
                            wv = a.w[wi]
                            dw = k.a_ltp * (xq - k.x_tar)
                            if k.multiplicative:
                                dw *= (1.0 - wv) if dw > 0.0 else wv
                            a.w[wi] = _clip01(wv + dw)
                a.x_post[idx] = a.x_post[idx] * math.exp(-float(t - a.t_post[idx]) / k.tau_post) + 1.0
                a.t_post[idx] = t
                if k.theta_plus > 0.0:
                    raised[n_raised] = idx
                    raised_theta[n_raised] = theta
                    n_raised += 1
                if k.wta_learn:
                    for p in range(ho * wo):
                        kk = m * ho * wo + p
                        a.v_l[kk] = 0.0
                        a.cur_l[kk] = 0.0
                        a.t_l[kk] = t
                    _reset_region(a.v_l, a.cur_l, a.t_l, t, -1, oy, ox, k.r_learn, ho, wo, m_count)
                a.v_l[idx] = k.v_reset
                a.ref_l[idx] = float(t) + k.t_ref
                a.map_spikes[m] += 1
                a.counters[1] += 1
        # (6) inference spikes
        _order(cand_i, ni, a.v_i)
        for q in range(ni):
            idx = cand_i[q]
            if a.v_i[idx] < k.th_inf or (
                k.theta_inf and a.v_i[idx] < k.th_inf + _theta_at(a.theta, a.t_theta, idx, t, k.tau_theta)
            ):
                continue
            m = idx // (ho * wo)
            pos = idx - m * ho * wo
            oy = pos // wo
            ox = pos - oy * wo
            a.v_i[idx] = k.v_reset
            a.ref_i[idx] = float(t) + k.t_ref
            out_t[n_out] = t
            out_x[n_out] = ox
            out_y[n_out] = oy
            out_c[n_out] = m
            n_out += 1
            a.counters[2] += 1
            if k.r_inf >= 0:
                _reset_region(a.v_i, a.cur_i, a.t_i, t, m, oy, ox, k.r_inf, ho, wo, m_count)
        # (7) the adaptive thresholds of this input's learning spikes
        for q in range(n_raised):
            a.theta[raised[q]] = raised_theta[q] + k.theta_plus
            a.t_theta[raised[q]] = t
    return out_t, out_x, out_y, out_c, n_out, consumed
