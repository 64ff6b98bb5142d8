"""The records the trace rule's kernel takes: its constants and its state arrays (NamedTuples numba
passes as tuples; the geometry is Thiele's ``nodes.stdp.records.Geometry``)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TraceConstants(NamedTuple):
    """A trace layer's constants, times in µs (see ``nodes.stdp.rules.trace.params``)."""

    th_learn: float
    th_inf: float
    v_reset: float
    tau_m: float
    tau_syn: float  # 0: delta synapse
    t_ref: float
    tau_pre: float
    tau_post: float
    a_ltp: float
    a_ltd: float
    x_tar: float
    theta_plus: float  # 0: no adaptive threshold
    tau_theta: float
    theta_inf: bool
    multiplicative: bool
    wta_learn: bool
    r_learn: int  # inter-map WTA radius of learning spikes (fc: 0)
    r_inf: int  # inhibition radius of inference spikes (-1: none)


class TraceArrays(NamedTuple):
    """A trace layer's state, updated in place. Neurons flat ``(M, Ho, Wo)`` (canonical), weights flat
    ``(M, C, KH, KW)``; each population (learning ``_l``, inference ``_i``) keeps its potential ``v``,
    current ``cur``, the time both were last brought up to date and the end of its refractory period."""

    w: np.ndarray  # float64 (M*C*KH*KW,)
    v_l: np.ndarray  # float64 (N,)
    cur_l: np.ndarray  # float64 (N,)
    t_l: np.ndarray  # int64 (N,): time v_l, cur_l hold
    ref_l: np.ndarray  # float64 (N,): end of the refractory period (a time, µs)
    v_i: np.ndarray  # float64 (N,)
    cur_i: np.ndarray  # float64 (N,)
    t_i: np.ndarray  # int64 (N,)
    ref_i: np.ndarray  # float64 (N,)
    theta: np.ndarray  # float64 (N,): adaptive threshold offset at t_theta
    t_theta: np.ndarray  # int64 (N,)
    x_post: np.ndarray  # float64 (N,): post trace of the learning neurons
    t_post: np.ndarray  # int64 (N,)
    x_pre: np.ndarray  # float64 (C*H*W,): pre trace of each input position
    t_pre: np.ndarray  # int64 (C*H*W,)
    map_spikes: np.ndarray  # int64 (M,): learning spikes of each map
    counters: np.ndarray  # int64 [inputs, learning spikes, inference spikes]
