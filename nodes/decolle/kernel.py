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
N_CONSTS = 10

# Layout of a layer's int64 state ``lstate``.
L_LAST_T = 0  # time of the layer's last input spike in this segment (INT64_MIN: none yet)
L_N_INPUTS = 1  # input spikes since creation
L_N_OUTPUTS = 2  # output spikes since creation
L_N_UPDATES = 3  # teaching steps since creation
N_LSTATE = 4

INT64_MIN = np.iinfo(np.int64).min


@njit(cache=True)
def _take_input(x: np.ndarray, active: np.ndarray, c: int, a: float) -> int:
    """Input ``c`` spikes: mark it seen in the segment, decay every seen input's trace by ``a`` and add
    one to ``c``'s; returns the number of seen inputs (``active`` as in ``layer_run``)."""
    n_in = x.shape[0]
    n_act = active[2 * n_in]
    if active[n_in + c] == 0:
        active[n_in + c] = 1
        active[n_act] = c
        n_act += 1
        active[2 * n_in] = n_act
    for q in range(n_act):
        x[active[q]] *= a
    x[c] += 1.0
    return int(n_act)


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


#: For the type checker only: (w, w_fwd, g, elig, x, active, u, y, lstate).
LayerState = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


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

    ``spikes`` = ``(t, c)``; ``state`` = ``(w, w_fwd, g, elig, x, active, u, y, lstate)``, updated in place:
    ``w``, ``w_fwd``, ``elig`` (neurons, inputs), ``g`` (classes, neurons), ``x`` (inputs,), ``u``, ``y``
    (neurons,) float64; ``active`` (2 inputs + 1,) int64: the inputs seen since the segment opened, a seen
    flag per input, their number (only they have traces, so a spike costs neurons x that number).
    ``segment`` = ``(label, teach, learn)``. Writes the layer's spikes to ``out`` = ``(t, c)``; stops before a
    spike when ``out`` has no room for every neuron firing; returns ``(next spike, spikes out)``.
    """
    in_t, in_c = spikes
    w, w_fwd, g, elig, x, active, u, y, lstate = state
    label, teach, learn = segment
    out_t, out_c = out
    n_out = w.shape[0]
    n_cls = g.shape[0]
    tau_mem = consts[C_TAU_MEM]
    tau_out = consts[C_TAU_OUT]
    theta = consts[C_THETA]
    sharp = consts[C_SHARPNESS]
    eta = consts[C_ETA]
    target = consts[C_TARGET]
    quiet = consts[C_QUIET]
    floor = consts[C_FLOOR]
    busy = consts[C_BUSY]
    readout = 0.0 if consts[C_RANDOM] != 0.0 else 1.0
    cap = out_t.shape[0]
    psi = np.empty(n_out)
    r = np.empty(n_cls)
    delta = np.empty(n_out)
    rho = np.zeros(n_out)
    last = lstate[L_LAST_T]
    o = 0
    s = lo
    while s < in_t.shape[0] and o + n_out <= cap:
        t = in_t[s]
        c = in_c[s]
        a = 1.0
        b = 1.0
        if last != INT64_MIN and t > last:
            dt = float(t - last)
            a = math.exp(-dt / tau_mem)
            b = math.exp(-dt / tau_out)
        last = t
        n_act = _take_input(x, active, c, a)
        for i in range(n_out):
            ui = a * u[i] + w_fwd[i, c]
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
        if learn:
            for i in range(n_out):
                p = psi[i]
                for q in range(n_act):
                    j = active[q]
                    elig[i, j] = b * elig[i, j] + p * x[j]
        if teach:
            _local_error(g, y, label, target, readout, r, delta)
            for i in range(n_out):
                step = eta * delta[i]
                lift = eta * rho[i]
                if step != 0.0 or lift != 0.0:
                    for q in range(n_act):
                        j = active[q]
                        w[i, j] -= step * elig[i, j] + lift * x[j]
            lstate[L_N_UPDATES] += 1
        s += 1
    lstate[L_LAST_T] = last
    lstate[L_N_INPUTS] += s - lo
    lstate[L_N_OUTPUTS] += o
    return s, o


@njit(cache=True)
def layer_reset(
    elig: np.ndarray, x: np.ndarray, active: np.ndarray, u: np.ndarray, y: np.ndarray, lstate: np.ndarray
) -> None:
    """Bring the layer to rest for a new segment: traces, membranes, outputs (the per-label reset)."""
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        j = active[q]
        x[j] = 0.0
        elig[:, j] = 0.0
        active[n_in + j] = 0
    active[2 * n_in] = 0
    u[:] = 0.0
    y[:] = 0.0
    lstate[L_LAST_T] = INT64_MIN


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
    ``elig`` is per neuron and tap ``(neurons, taps)``; a tap's step is the sum of its neurons' steps, so
    the change of a kernel over a training segment is ``-eta`` times the gradient of the same local loss,
    the weights tied. ``geom``: ``G_*`` above.
    """
    in_t, in_c = spikes
    w, w_fwd, g, elig, x, active, u, y, lstate = state
    label, teach, learn = segment
    out_t, out_c = out
    height, width = geom[G_HEIGHT], geom[G_WIDTH]
    k, oh, ow = geom[G_KERNEL], geom[G_OUT_H], geom[G_OUT_W]
    n_out = u.shape[0]
    taps = w.shape[1]
    plane = oh * ow
    n_cls = g.shape[0]
    tau_mem = consts[C_TAU_MEM]
    tau_out = consts[C_TAU_OUT]
    theta = consts[C_THETA]
    sharp = consts[C_SHARPNESS]
    eta = consts[C_ETA]
    target = consts[C_TARGET]
    quiet = consts[C_QUIET]
    floor = consts[C_FLOOR]
    busy = consts[C_BUSY]
    readout = 0.0 if consts[C_RANDOM] != 0.0 else 1.0
    cap = out_t.shape[0]
    psi = np.empty(n_out)
    r = np.empty(n_cls)
    delta = np.empty(n_out)
    rho = np.zeros(n_out)
    last = lstate[L_LAST_T]
    o = 0
    s = lo
    while s < in_t.shape[0] and o + n_out <= cap:
        t = in_t[s]
        c = in_c[s]
        a = 1.0
        b = 1.0
        if last != INT64_MIN and t > last:
            dt = float(t - last)
            a = math.exp(-dt / tau_mem)
            b = math.exp(-dt / tau_out)
        last = t
        _take_input(x, active, c, a)
        ci = c // (height * width)
        yy = (c // width) % height
        xx = c % width
        for i in range(n_out):
            m = i // plane
            oy = (i // ow) % oh
            ox = i % ow
            dy = yy - oy
            dx = xx - ox
            ui = a * u[i]
            if 0 <= dy < k and 0 <= dx < k:
                ui += w_fwd[m, (ci * k + dy) * k + dx]
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
        if learn:
            for i in range(n_out):
                p = psi[i]
                oy = (i // ow) % oh
                ox = i % ow
                for q in range(taps):
                    cj = q // (k * k)
                    j = (cj * height + oy + (q // k) % k) * width + ox + q % k
                    elig[i, q] = b * elig[i, q] + p * x[j]
        if teach:
            _local_error(g, y, label, target, readout, r, delta)
            for i in range(n_out):
                step = eta * delta[i]
                lift = eta * rho[i]
                if step != 0.0 or lift != 0.0:
                    m = i // plane
                    oy = (i // ow) % oh
                    ox = i % ow
                    for q in range(taps):
                        cj = q // (k * k)
                        j = (cj * height + oy + (q // k) % k) * width + ox + q % k
                        w[m, q] -= step * elig[i, q] + lift * x[j]
            lstate[L_N_UPDATES] += 1
        s += 1
    lstate[L_LAST_T] = last
    lstate[L_N_INPUTS] += s - lo
    lstate[L_N_OUTPUTS] += o
    return s, o


@njit(cache=True)
def conv_layer_reset(
    elig: np.ndarray, x: np.ndarray, active: np.ndarray, u: np.ndarray, y: np.ndarray, lstate: np.ndarray
) -> None:
    """``layer_reset`` for a convolution layer (its eligibility is per neuron and tap)."""
    n_in = x.shape[0]
    for q in range(active[2 * n_in]):
        j = active[q]
        x[j] = 0.0
        active[n_in + j] = 0
    active[2 * n_in] = 0
    elig[:, :] = 0.0
    u[:] = 0.0
    y[:] = 0.0
    lstate[L_LAST_T] = INT64_MIN
