"""Numba kernel of the e-prop readout: LIF output neurons learning online from eligibility traces.

Only ``@njit`` functions over plain arrays and scalars; ``nodes.classifier.eprop`` owns the state and
validates the input. The walk over labels and spikes is ``kernel._merge``, shared with every readout.

The contract the kernel and ``tests/reference/eprop_reference.py`` (a backward pass through time, a
different algorithm) must both meet, one input spike ``k`` at a time (channel ``c``, time ``t_k``,
``a = exp(-(t_k - t_{k-1}) / tau_mem)``, ``b = exp(-(t_k - t_{k-1}) / tau_out)``; the first spike ever
decays nothing):

1. ``x_j <- a x_j + [j == c]`` (presynaptic trace), ``u_i <- a u_i + v_i[c]`` where ``v`` are the
   forward weights (``w_fwd``) and ``r_i <- a r_i`` (the decayed resets, for the free membrane);
2. ``z_i = [u_i >= theta]``; ``psi_i = 1 / (1 + sharpness |u_i - theta| / theta)^2`` (the surrogate
   derivative of ``z_i`` with respect to ``u_i``, SuperSpike's fast sigmoid);
3. ``e_ij <- b e_ij + psi_i x_j`` (the eligibility trace, low-pass filtered as the output is);
   ``y_i <- b y_i + z_i`` (the filtered output spikes);
4. the score ``S_i += u_i + theta r_i`` (the free membrane ``v_i . x``: the input integrated without the
   resets); then ``u_i <- u_i - theta z_i``, ``r_i <- r_i + z_i`` (reset by subtraction);
5. when teaching: ``w_ij <- w_ij - eta (y_i - target [i == label]) e_ij``.

Every label record starts the next segment with all traces, membranes and outputs at rest (as an offline
trainer starts each sample), so a segment's decision rests on its own spikes only, and an error is never
blamed on the previous sample's spikes, which were right for their own label: with time constants
longer than a sample, that blame drove every weight negative on a task any readout separates.

``w`` learns at every spike; the neurons run on ``w_fwd``, the weights as the segment opened, which
take ``w`` when a training segment closes. So every decision is made before its own label teaches, and
the change of ``w`` over a training segment is exactly ``-eta`` times the gradient of the segment's summed
loss ``sum_k 1/2 |y[k] - target|^2`` with respect to ``w_fwd``, with ``dz/du := psi`` and the reset
treated as a constant (e-prop's two choices; without recurrence nothing else is approximated), which is
what ``tests/test_eprop.py`` checks against a backward pass through time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernel import (
    I_LAST_T,
    I_N_OUTPUTS,
    I_N_UPDATES,
    I_SEG_INPUTS,
    I_SEG_LABEL,
    I_SEG_OPEN,
    I_SEG_TRAIN,
    INT64_MIN,
    Columns,
    Labels,
    Spikes,
    _argmax_or_none,
    _merge,
    _open_segment,
    _write_record,
)

#: For the type checker only: (w, w_fwd, elig, x, active, u, r, y, seg_scores, consts, learn).
EpropState = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    bool,
]

# Layout of the float64 constants array ``consts``.
C_TAU_MEM = 0  # membrane and presynaptic-trace time constant, microseconds
C_TAU_OUT = 1  # output and eligibility filter time constant, microseconds
C_THETA = 2  # firing threshold
C_SHARPNESS = 3  # steepness of the surrogate derivative
C_ETA = 4  # learning rate
C_TARGET = 5  # target of the labelled class's filtered output
N_CONSTS = 6


@njit(cache=True)
def eprop_run(
    spikes: Spikes, labels: Labels, state: EpropState, istate: np.ndarray, final: bool, out: Columns
) -> tuple[int, int]:
    """Run the e-prop readout over one batch of spikes (the steps in the module docstring).

    ``state`` = ``(w, w_fwd, elig, x, active, u, r, y, seg_scores, consts, learn)``: ``w``, ``w_fwd``,
    ``elig`` (classes, inputs), ``x`` (inputs,), ``u``, ``r``, ``y``, ``seg_scores`` (classes,) float64,
    ``active`` (2 inputs + 1,) int64 (the inputs seen since the segment opened, then a seen flag per input,
    then their number: the only inputs with traces, so a spike costs classes x that number, not classes x
    inputs); they and ``istate`` are updated in place. ``consts`` holds the constants ``C_*``.
    While ``learn`` is false the eligibility traces are not kept (the caller clears them when learning
    resumes). Emits a running prediction on every spike that makes an output neuron fire and one decision
    per segment. Returns ``(labels used, records written)``.
    """
    return _merge(
        spikes,
        labels,
        istate,
        final,
        out,
        state,
        _eprop_label,
        _eprop_spikes,
        _eprop_close,
    )


@njit(cache=True)
def _eprop_spikes(
    lo: int,
    hi: int,
    spk_t: np.ndarray,
    spk_c: np.ndarray,
    state: EpropState,
    istate: np.ndarray,
    o: int,
    out: Columns,
) -> int:
    """Input spikes ``lo..hi-1`` of one segment: decay, integrate, fire, trace, learn."""
    w, w_fwd, elig, x, active, u, r, y, seg_scores, consts, learn = state
    n_cls, n_in = w.shape
    tau_mem = consts[C_TAU_MEM]
    tau_out = consts[C_TAU_OUT]
    theta = consts[C_THETA]
    sharp = consts[C_SHARPNESS]
    eta = consts[C_ETA]
    target = consts[C_TARGET]
    label = istate[I_SEG_LABEL]
    teach = learn and istate[I_SEG_TRAIN] == 1 and label >= 0  # a run lies within one segment
    last = istate[I_LAST_T]
    psi = np.empty(n_cls)
    for s in range(lo, hi):
        t = spk_t[s]
        c = spk_c[s]
        a = 1.0
        b = 1.0
        if last != INT64_MIN and t > last:
            dt = float(t - last)
            a = math.exp(-dt / tau_mem)
            b = math.exp(-dt / tau_out)
        last = t
        # Only the inputs seen since the segment opened have x > 0 (and eligibility): walk those.
        n_act = active[2 * n_in]
        if active[n_in + c] == 0:
            active[n_in + c] = 1
            active[n_act] = c
            n_act += 1
            active[2 * n_in] = n_act
        for q in range(n_act):
            x[active[q]] *= a
        x[c] += 1.0
        fired = False
        for i in range(n_cls):
            ui = a * u[i] + w_fwd[i, c]
            r[i] *= a
            seg_scores[i] += ui + theta * r[i]
            d = 1.0 + sharp * abs(ui - theta) / theta
            psi[i] = 1.0 / (d * d)
            zi = 1.0 if ui >= theta else 0.0
            y[i] = b * y[i] + zi
            if zi > 0.0:
                fired = True
                ui -= theta
                r[i] += 1.0
                istate[I_N_OUTPUTS] += 1
            u[i] = ui
        if learn:
            for i in range(n_cls):
                p = psi[i]
                for q in range(n_act):
                    j = active[q]
                    elig[i, j] = b * elig[i, j] + p * x[j]
        if teach:
            for i in range(n_cls):
                err = y[i] - (target if i == label else 0.0)
                if err != 0.0:
                    step = eta * err
                    for q in range(n_act):
                        j = active[q]
                        w[i, j] -= step * elig[i, j]
            istate[I_N_UPDATES] += 1
        if fired:
            o = _write_record(o, t, _argmax_or_none(seg_scores, True), -1, 0, istate[I_SEG_TRAIN], seg_scores, out)
    return o


@njit(cache=True)
def _eprop_close(t: int, state: EpropState, istate: np.ndarray, o: int, out: Columns) -> int:
    """Write the open segment's decision (``argmax S``); a training segment hands ``w`` to the neurons."""
    w, w_fwd = state[0], state[1]
    seg_scores = state[8]
    if istate[I_SEG_OPEN] == 1:
        pred = _argmax_or_none(seg_scores, istate[I_SEG_INPUTS] > 0)
        o = _write_record(o, t, pred, istate[I_SEG_LABEL], 1, istate[I_SEG_TRAIN], seg_scores, out)
        if istate[I_SEG_TRAIN] == 1:
            w_fwd[:, :] = w
    return o


@njit(cache=True)
def _eprop_label(t: int, label: int, train: int, state: EpropState, istate: np.ndarray, o: int, out: Columns) -> int:
    """Apply one label record: close the segment, open the next with every neuron and trace at rest."""
    elig, x, active, u, r, y, seg_scores = state[2:9]
    o = _eprop_close(t, state, istate, o, out)
    _open_segment(t, label, train, istate)
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        j = active[q]
        x[j] = 0.0
        elig[:, j] = 0.0
        active[n_in + j] = 0
    active[2 * n_in] = 0
    u[:] = 0.0
    r[:] = 0.0
    y[:] = 0.0
    seg_scores[:] = 0.0
    return o
