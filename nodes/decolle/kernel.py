"""Numba kernel of one DECOLLE layer: LIF neurons learning online from a fixed random local readout.

Only ``@njit`` functions over plain arrays and scalars; ``nodes.decolle.network`` owns the state, walks the
labels and validates the input. The contract the kernel and ``tests/reference/decolle_reference.py`` (a
backward pass through time, a different algorithm) must both meet, one input spike ``k`` of the layer at a
time (channel ``c``, time ``t_k``, ``a = exp(-(t_k - t_{k-1}) / tau_mem)``, ``b = exp(-(t_k - t_{k-1}) /
tau_out)``; the first spike of a segment decays nothing, as every trace is at rest then):

1. ``x_j <- a x_j + [j == c]`` (presynaptic trace), ``u_i <- a u_i + v_i[c]`` where ``v`` are the
   forward weights (``w_fwd``, the weights as the segment opened);
2. ``z_i = [u_i >= theta]``, ``psi_i = 1 / (1 + sharpness |u_i - theta| / theta)^2`` (SuperSpike's
   surrogate of ``dz_i / du_i``); ``z_i = 1`` sends an output spike ``(t_k, i)`` up; ``u_i -= theta z_i``;
3. ``e_ij <- b e_ij + psi_i x_j`` (eligibility), ``y_i <- b y_i + z_i`` (filtered output spikes);
4. the local readout ``r = G y`` (``G`` fixed, random, seeded: never learnt), its error
   ``delta = G^T (r - target onehot(label))``; with random feedback (direct random target projection,
   Frenkel, Lefebvre and Bol 2021) the readout's own term is dropped, ``delta = -G^T target onehot``
   (``G`` is then the fixed feedback matrix); the activity regularisers' slope on the membrane (``u_i``
   before the reset) ``rho_i = busy [u_i > theta] - quiet [u_i < floor]``;
5. when teaching: ``w_ij <- w_ij - eta (delta_i e_ij + rho_i x_j)``.

So over a training segment the change of ``w`` is exactly ``-eta`` times the gradient of the layer's own
loss with respect to ``w_fwd``, with ``dz/du := psi`` and the reset a constant (so ``du_i[k] / dw_ij =
x_j[k]``): ``sum_k 1/2 |G y[k] - target onehot|^2`` (random feedback: the linear ``sum_k -target onehot .
G y[k]``) plus ``sum_k sum_i (busy relu(u_i[k] - theta) + quiet relu(floor - u_i[k]))``. The layer's
input is whatever spikes arrive (the layer below's output is a constant to it: no gradient crosses
layers, DECOLLE's defining property). The two regularisers are DECOLLE's (Kaiser, Mostafa and Neftci
2020, "activity regularisation"), per neuron: one lifts a membrane that sinks below ``floor`` (a silent
neuron learns nothing and tells the readout nothing), one penalises firing.

**How it is computed.** Steps 3 and 5 as written touch every synapse at every spike. The kernel instead
keeps them factored, so a spike costs the neurons once (plus the synapses of the input that spiked).
With ``A``, ``B`` the products of the ``a``, ``b`` since a base point, ``x_j = A X_j`` (``X_j`` changes
only when ``j`` spikes), ``e_ij = B (K_ij + X_j Q_i)`` with ``Q_i = sum psi_i A / B``, and the pending
step ``sum (delta_i e_ij + rho_i x_j) = L_ij + K_ij R_i + X_j S_i`` with ``R_i = sum delta_i B`` and
``S_i = sum (delta_i B Q_i + rho_i A)``. A spike of ``j`` changes ``X_j`` by ``1 / A``; ``K_ij`` and
``L_ij`` take the change that keeps ``e_ij`` and the pending step continuous. The pending step goes into
``w`` (settling) at each rebase, when the segment closes and when learning stops (the network's
``freeze``): ``w_fwd`` does not read ``w`` in between. A rebase (settle, then ``K_ij <- e_ij``,
``X_j <- x_j``, ``Q = 0``, ``A = B = 1``) comes when ``A`` or ``B`` would fall below ``REBASE_LOW`` or after
``C_REBASE_EVERY`` spikes, which bounds the cancellation in these sums. Both are counted from the
segment's spikes, never from the batches, so results stay identical
whatever the batching; they equal steps 3 and 5 up to float rounding (the reference test: 1e-9).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Layout of the float64 constants array ``consts``.
C_TAU_MEM = 0  # membrane and presynaptic-trace time constant, microseconds
C_TAU_OUT = 1  # output and eligibility filter time constant, microseconds
C_THETA = 2  # firing threshold
C_SHARPNESS = 3  # steepness of the surrogate derivative
C_ETA = 4  # learning rate
C_TARGET = 5  # the labelled class's target of the local readout
C_QUIET = 6  # weight of the regulariser that lifts membranes below C_FLOOR
C_FLOOR = 7  # membrane below which the quiet regulariser lifts
C_BUSY = 8  # weight of the regulariser on membranes above threshold (firing)
C_RANDOM = 9  # 1.0: random feedback (the error is -G^T target onehot), 0.0: the local readout's error
C_REBASE_EVERY = 10  # input spikes between rebases at most (``REBASE_EVERY``; tests set fewer)
N_CONSTS = 11

# Layout of a layer's int64 state ``lstate``.
L_LAST_T = 0  # time of the layer's last input spike in this segment (INT64_MIN: none yet)
L_N_INPUTS = 1  # input spikes since creation
L_N_OUTPUTS = 2  # output spikes since creation
L_N_UPDATES = 3  # teaching steps since creation
L_SINCE = 4  # input spikes since the last rebase
L_PENDING = 5  # 1 when a teaching step waits to be settled into ``w``
N_LSTATE = 6

# Layout of a layer's float64 state ``fstate``: the decay products since the last rebase.
F_A = 0  # product of the membrane decays ``a``
F_B = 1  # product of the output decays ``b``
N_FSTATE = 2

# Layout of the per-neuron sums ``acc`` (3, neurons).
A_Q = 0  # sum of psi A / B
A_R = 1  # sum of delta B over teaching steps
A_S = 2  # sum of delta B Q + rho A over teaching steps

#: a rebase comes before ``A`` or ``B`` falls below this (so ``1 / A`` and ``A / B`` stay below 1e3) ...
REBASE_LOW = 1e-3
#: ... or after this many input spikes (so the sums stay small next to their terms; ``C_REBASE_EVERY``)
REBASE_EVERY = 1024

INT64_MIN = np.iinfo(np.int64).min


@njit(cache=True)
def _mark(active: np.ndarray, n_in: int, c: int) -> None:
    """Note input ``c`` as seen in the segment (``active`` as in ``layer_run``)."""
    if active[n_in + c] == 0:
        active[n_in + c] = 1
        n_act = active[2 * n_in]
        active[n_act] = c
        active[2 * n_in] = n_act + 1


@njit(cache=True)
def _local_error(
    g: np.ndarray, y: np.ndarray, label: int, target: float, readout: float, r: np.ndarray, delta: np.ndarray
) -> None:
    """The local readout's error ``r = readout G y - target onehot(label)`` and its projection
    ``delta = G^T r`` onto the neurons (step 4 of the module docstring), into ``r`` and ``delta``."""
    n_cls, n_out = g.shape
    for k in range(n_cls):
        acc = 0.0
        for i in range(n_out):
            acc += g[k, i] * y[i]
        r[k] = readout * acc - (target if k == label else 0.0)
    for i in range(n_out):
        acc = 0.0
        for k in range(n_cls):
            acc += g[k, i] * r[k]
        delta[i] = acc


@njit(cache=True)
def _neurons(
    u: np.ndarray, y: np.ndarray, w_col: np.ndarray, a: float, b: float, consts: np.ndarray,
    psi: np.ndarray, rho: np.ndarray, t: int, out: tuple[np.ndarray, np.ndarray], o: int,
) -> int:  # fmt: skip
    """Steps 1-3 for the neurons of an fc layer (``w_col``: the forward weights of the input that
    spiked); writes the spikes to ``out`` from ``o`` on, returns the new count."""
    theta = consts[C_THETA]
    sharp = consts[C_SHARPNESS]
    quiet = consts[C_QUIET]
    floor = consts[C_FLOOR]
    busy = consts[C_BUSY]
    out_t, out_c = out
    for i in range(u.shape[0]):
        ui = a * u[i] + w_col[i]
        d = 1.0 + sharp * abs(ui - theta) / theta
        psi[i] = 1.0 / (d * d)
        rho[i] = (busy if ui > theta else 0.0) - (quiet if ui < floor else 0.0)
        zi = 0.0
        if ui >= theta:
            zi = 1.0
            ui -= theta
            out_t[o] = t
            out_c[o] = i
            o += 1
        u[i] = ui
        y[i] = b * y[i] + zi
    return o


@njit(cache=True)
def _accumulate(
    acc: np.ndarray, psi: np.ndarray, rho: np.ndarray, delta: np.ndarray, big_a: float, big_b: float, teach: bool
) -> None:
    """Fold this spike's surrogates (and, teaching, its errors) into the per-neuron sums."""
    ab = big_a / big_b
    for i in range(acc.shape[1]):
        q = acc[A_Q, i] + psi[i] * ab
        acc[A_Q, i] = q
        if teach:
            acc[A_R, i] += delta[i] * big_b
            acc[A_S, i] += delta[i] * big_b * q + rho[i] * big_a


#: For the type checker only: (w, w_fwd, g, elig, pend, x, active, u, y, acc, lstate, fstate).
LayerState = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
]  # fmt: skip


@njit(cache=True)
def settle(state: LayerState, consts: np.ndarray) -> None:
    """Move an fc layer's pending step into ``w`` (the module docstring's settling)."""
    w, _, _, elig, pend, x, active, _, _, acc, lstate, _ = state
    if lstate[L_PENDING] == 0:
        return
    eta = consts[C_ETA]
    n_in = x.shape[0]
    for i in range(w.shape[0]):
        ri = acc[A_R, i]
        si = acc[A_S, i]
        for q in range(active[2 * n_in]):
            j = active[q]
            w[i, j] -= eta * (pend[i, j] + elig[i, j] * ri + x[j] * si)
            pend[i, j] = 0.0
        acc[A_R, i] = 0.0
        acc[A_S, i] = 0.0
    lstate[L_PENDING] = 0


@njit(cache=True)
def _restart(acc: np.ndarray, lstate: np.ndarray, fstate: np.ndarray) -> None:
    """Start ``A``, ``B`` and ``Q`` afresh (after a rebase has folded them into the traces)."""
    acc[A_Q, :] = 0.0
    fstate[F_A] = 1.0
    fstate[F_B] = 1.0
    lstate[L_SINCE] = 0


@njit(cache=True)
def _rebase(state: LayerState, consts: np.ndarray, learn: bool, a: float, b: float) -> None:
    """Settle, then restart ``A``, ``B`` and ``Q`` from the current traces decayed by the coming spike's
    ``a`` and ``b`` (an fc layer). Folding them in keeps ``1 / A`` finite after any silence."""
    settle(state, consts)
    _, _, _, elig, _, x, active, _, _, acc, lstate, fstate = state
    big_a, big_b = fstate[F_A] * a, fstate[F_B] * b
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        j = active[q]
        if learn:
            xj = x[j]
            for i in range(elig.shape[0]):
                elig[i, j] = big_b * (elig[i, j] + xj * acc[A_Q, i])
        x[j] *= big_a
    _restart(acc, lstate, fstate)


@njit(cache=True)
def _rebase_due(fstate: np.ndarray, lstate: np.ndarray, consts: np.ndarray, a: float, b: float) -> bool:
    """Whether a rebase must come before the next spike (the module docstring)."""
    low = fstate[F_A] * a < REBASE_LOW or fstate[F_B] * b < REBASE_LOW
    return bool(low or lstate[L_SINCE] >= consts[C_REBASE_EVERY])


@njit(cache=True)
def _decays(t: int, lstate: np.ndarray, consts: np.ndarray) -> tuple[float, float]:
    """``a`` and ``b`` of a spike at ``t`` (1 for the segment's first spike)."""
    last = lstate[L_LAST_T]
    if last != INT64_MIN and t > last:
        dt = float(t - last)
        return math.exp(-dt / consts[C_TAU_MEM]), math.exp(-dt / consts[C_TAU_OUT])
    return 1.0, 1.0


@njit(cache=True)
def layer_run(
    spikes: tuple[np.ndarray, np.ndarray],
    lo: int,
    state: LayerState,
    consts: np.ndarray,
    segment: tuple[int, bool, bool],
    out: tuple[np.ndarray, np.ndarray],
) -> tuple[int, int]:
    """Run the layer over input spikes ``lo..`` of one segment (the steps in the module docstring).

    ``spikes`` = ``(t, c)``; ``state`` = ``(w, w_fwd, g, elig, pend, x, active, u, y, acc, lstate, fstate)``,
    updated in place: ``w``, ``w_fwd``, ``elig`` (``K``), ``pend`` (``L``) (neurons, inputs), ``g`` (classes,
    neurons), ``x`` (``X``, inputs), ``u``, ``y`` (neurons) float64; ``active`` (2 inputs + 1,) int64: the
    inputs seen since the segment opened, a seen flag per input, their number; ``acc`` (``Q``, ``R``,
    ``S``), ``lstate``, ``fstate`` as laid out above. ``segment`` = ``(label, teach, learn)``. Writes the
    layer's spikes to ``out`` = ``(t, c)``; stops before a spike when ``out`` has no room for every neuron
    firing; returns ``(next spike, spikes out)``.
    """
    in_t, in_c = spikes
    _, w_fwd, g, elig, pend, x, active, u, y, acc, lstate, fstate = state
    label, teach, learn = segment
    n_out = w_fwd.shape[0]
    n_in = x.shape[0]
    target = consts[C_TARGET]
    readout = 0.0 if consts[C_RANDOM] != 0.0 else 1.0
    cap = out[0].shape[0]
    w_col = np.empty(n_out)
    psi = np.empty(n_out)
    rho = np.zeros(n_out)
    r = np.empty(g.shape[0])
    delta = np.empty(n_out)
    o = 0
    s = lo
    while s < in_t.shape[0] and o + n_out <= cap:
        t = in_t[s]
        c = in_c[s]
        a, b = _decays(t, lstate, consts)
        lstate[L_LAST_T] = t
        if _rebase_due(fstate, lstate, consts, a, b):
            _rebase(state, consts, learn, a, b)  # (A = B = 1 after it, this spike's decays folded in)
        else:
            fstate[F_A] *= a
            fstate[F_B] *= b
        big_a = fstate[F_A]
        big_b = fstate[F_B]
        lstate[L_SINCE] += 1
        inv = 1.0 / big_a
        _mark(active, n_in, c)
        if learn:
            for i in range(n_out):
                q = acc[A_Q, i]
                elig[i, c] -= q * inv
                pend[i, c] += (q * acc[A_R, i] - acc[A_S, i]) * inv
        x[c] += inv
        for i in range(n_out):
            w_col[i] = w_fwd[i, c]
        o = _neurons(u, y, w_col, a, b, consts, psi, rho, t, out, o)
        if teach:
            _local_error(g, y, label, target, readout, r, delta)
            lstate[L_N_UPDATES] += 1
            lstate[L_PENDING] = 1
        if learn:
            _accumulate(acc, psi, rho, delta, big_a, big_b, teach)
        s += 1
    lstate[L_N_INPUTS] += s - lo
    lstate[L_N_OUTPUTS] += o
    return s, o


@njit(cache=True)
def layer_reset(state: LayerState, consts: np.ndarray) -> None:
    """Settle, then bring the layer to rest for a new segment: traces, membranes, outputs (the
    per-label reset)."""
    settle(state, consts)
    _, _, _, elig, _, x, active, u, y, acc, lstate, fstate = state
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        j = active[q]
        x[j] = 0.0
        elig[:, j] = 0.0
        active[n_in + j] = 0
    active[2 * n_in] = 0
    _rest(u, y, acc, lstate, fstate)


@njit(cache=True)
def _rest(u: np.ndarray, y: np.ndarray, acc: np.ndarray, lstate: np.ndarray, fstate: np.ndarray) -> None:
    u[:] = 0.0
    y[:] = 0.0
    acc[:, :] = 0.0
    _restart(acc, lstate, fstate)
    lstate[L_LAST_T] = INT64_MIN


@njit(cache=True)
def relearn(state: LayerState, consts: np.ndarray) -> None:
    """Settle and clear an fc layer's eligibility, which was not kept while learning was off."""
    settle(state, consts)
    state[3][:, :] = 0.0
    state[9][A_Q, :] = 0.0


# Layout of a convolution layer's int64 geometry ``geom``.
G_CHANNELS = 0  # input channels
G_HEIGHT = 1  # input height
G_WIDTH = 2  # input width
G_KERNEL = 3  # kernel side
G_MAPS = 4  # output maps
G_OUT_H = 5  # output height (height - kernel + 1)
G_OUT_W = 6  # output width
N_GEOM = 7


@njit(cache=True)
def _tap_input(geom: np.ndarray, i: int, q: int) -> int:
    """The input channel that neuron ``i`` sees through kernel tap ``q``."""
    height, width = geom[G_HEIGHT], geom[G_WIDTH]
    k, oh, ow = geom[G_KERNEL], geom[G_OUT_H], geom[G_OUT_W]
    oy = (i // ow) % oh
    ox = i % ow
    cj = q // (k * k)
    return int((cj * height + oy + (q // k) % k) * width + ox + q % k)


@njit(cache=True)
def conv_settle(state: LayerState, consts: np.ndarray, geom: np.ndarray) -> None:
    """``settle`` for a convolution layer: a kernel tap takes the pending steps of every neuron of its
    map."""
    w, _, _, elig, pend, x, _, _, _, acc, lstate, _ = state
    if lstate[L_PENDING] == 0:
        return
    eta = consts[C_ETA]
    plane = geom[G_OUT_H] * geom[G_OUT_W]
    taps = w.shape[1]
    for i in range(elig.shape[0]):
        m = i // plane
        ri = acc[A_R, i]
        si = acc[A_S, i]
        for q in range(taps):
            j = _tap_input(geom, i, q)
            w[m, q] -= eta * (pend[i, q] + elig[i, q] * ri + x[j] * si)
            pend[i, q] = 0.0
        acc[A_R, i] = 0.0
        acc[A_S, i] = 0.0
    lstate[L_PENDING] = 0


@njit(cache=True)
def _conv_rebase(state: LayerState, consts: np.ndarray, geom: np.ndarray, learn: bool, a: float, b: float) -> None:
    """``_rebase`` for a convolution layer (its eligibility is per neuron and tap)."""
    conv_settle(state, consts, geom)
    _, _, _, elig, _, x, active, _, _, acc, lstate, fstate = state
    big_a, big_b = fstate[F_A] * a, fstate[F_B] * b
    if learn:
        for i in range(elig.shape[0]):
            qi = acc[A_Q, i]
            for q in range(elig.shape[1]):
                elig[i, q] = big_b * (elig[i, q] + x[_tap_input(geom, i, q)] * qi)
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        x[active[q]] *= big_a
    _restart(acc, lstate, fstate)


@njit(cache=True)
def conv_layer_run(
    spikes: tuple[np.ndarray, np.ndarray],
    lo: int,
    state: LayerState,
    consts: np.ndarray,
    geom: np.ndarray,
    segment: tuple[int, bool, bool],
    out: tuple[np.ndarray, np.ndarray],
) -> tuple[int, int]:
    """``layer_run`` for a convolution layer: the same steps with tied weights.

    Input channel ``(ci * H + yy) * W + xx``, output neuron ``(m * OH + oy) * OW + ox`` (stride 1, no
    padding); neuron ``(m, oy, ox)`` sees inputs ``(cj, oy + dy, ox + dx)`` through kernel tap
    ``q = (cj * k + dy) * k + dx`` of map ``m``. ``w`` and ``w_fwd`` are the kernels ``(maps, taps)``,
    ``elig`` and ``pend`` are per neuron and tap ``(neurons, taps)``; a tap's step is the sum of its neurons'
    steps, so the change of a kernel over a training segment is ``-eta`` times the gradient of the same
    local loss, the weights tied. ``geom``: ``G_*`` above.
    """
    in_t, in_c = spikes
    _, w_fwd, g, elig, pend, x, active, u, y, acc, lstate, fstate = state
    label, teach, learn = segment
    height, width = geom[G_HEIGHT], geom[G_WIDTH]
    k, oh, ow = geom[G_KERNEL], geom[G_OUT_H], geom[G_OUT_W]
    n_maps = geom[G_MAPS]
    n_out = u.shape[0]
    n_in = x.shape[0]
    target = consts[C_TARGET]
    readout = 0.0 if consts[C_RANDOM] != 0.0 else 1.0
    cap = out[0].shape[0]
    w_col = np.zeros(n_out)
    psi = np.empty(n_out)
    rho = np.zeros(n_out)
    r = np.empty(g.shape[0])
    delta = np.empty(n_out)
    o = 0
    s = lo
    while s < in_t.shape[0] and o + n_out <= cap:
        t = in_t[s]
        c = in_c[s]
        a, b = _decays(t, lstate, consts)
        lstate[L_LAST_T] = t
        if _rebase_due(fstate, lstate, consts, a, b):
            _conv_rebase(state, consts, geom, learn, a, b)  # (A = B = 1 after it, this spike's decays folded in)
        else:
            fstate[F_A] *= a
            fstate[F_B] *= b
        big_a = fstate[F_A]
        big_b = fstate[F_B]
        lstate[L_SINCE] += 1
        inv = 1.0 / big_a
        _mark(active, n_in, c)
        ci = c // (height * width)
        yy = (c // width) % height
        xx = c % width
        # the neurons whose window holds the input: their tap's forward weight, and (learning) the
        # change of K and L that keeps e and the pending step continuous as X jumps
        for m in range(n_maps):
            for dy in range(k):
                oy = yy - dy
                if oy < 0 or oy >= oh:
                    continue
                for dx in range(k):
                    ox = xx - dx
                    if ox < 0 or ox >= ow:
                        continue
                    i = (m * oh + oy) * ow + ox
                    q = (ci * k + dy) * k + dx
                    w_col[i] = w_fwd[m, q]
                    if learn:
                        qi = acc[A_Q, i]
                        elig[i, q] -= qi * inv
                        pend[i, q] += (qi * acc[A_R, i] - acc[A_S, i]) * inv
        x[c] += inv
        o = _neurons(u, y, w_col, a, b, consts, psi, rho, t, out, o)
        for m in range(n_maps):  # clear w_col for the next spike
            for dy in range(k):
                oy = yy - dy
                if 0 <= oy < oh:
                    for dx in range(k):
                        ox = xx - dx
                        if 0 <= ox < ow:
                            w_col[(m * oh + oy) * ow + ox] = 0.0
        if teach:
            _local_error(g, y, label, target, readout, r, delta)
            lstate[L_N_UPDATES] += 1
            lstate[L_PENDING] = 1
        if learn:
            _accumulate(acc, psi, rho, delta, big_a, big_b, teach)
        s += 1
    lstate[L_N_INPUTS] += s - lo
    lstate[L_N_OUTPUTS] += o
    return s, o


@njit(cache=True)
def conv_layer_reset(state: LayerState, consts: np.ndarray, geom: np.ndarray) -> None:
    """``layer_reset`` for a convolution layer."""
    conv_settle(state, consts, geom)
    _, _, _, elig, _, x, active, u, y, acc, lstate, fstate = state
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        j = active[q]
        x[j] = 0.0
        active[n_in + j] = 0
    active[2 * n_in] = 0
    elig[:, :] = 0.0
    _rest(u, y, acc, lstate, fstate)


@njit(cache=True)
def conv_relearn(state: LayerState, consts: np.ndarray, geom: np.ndarray) -> None:
    """``relearn`` for a convolution layer."""
    conv_settle(state, consts, geom)
    state[3][:, :] = 0.0
    state[9][A_Q, :] = 0.0
