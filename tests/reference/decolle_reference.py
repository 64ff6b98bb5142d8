"""A slow reference of one DECOLLE layer that gets its weight changes by backpropagation through time.

The kernel (``nodes/decolle/kernel.py``) runs forward only: eligibility traces carry, at every input spike,
the derivative of each filtered output with respect to each weight, and the local readout's error moves the
weights at once. This reference does what an offline trainer does instead: it simulates the layer keeping
the segment's whole history (membranes recomputed from scratch as sums over every past input and output
spike, not updated incrementally) and, at the close of each training segment, runs a backward pass over
that history for the layer's local loss ``sum_k 1/2 |G y[k] - target onehot|^2`` (with random feedback
``sum_k -target onehot . G y[k]``) plus the activity
regularisers ``sum_k sum_i busy relu(u_i[k] - theta) + quiet relu(floor - u_i[k])`` with the conventions of
e-prop's reference (``dz/du := psi``, the reset a constant). Every label record starts from rest. Agreement
is the claim that the online rule is this gradient, exactly. Returns the output spikes ``(t, neuron)`` and
the final learning weights.

A convolution layer (``conv_reference``) is the same fully connected layer with tied weights: its weight
matrix is unrolled from the kernels, and a kernel's gradient is the sum of the gradients of the matrix
entries tied to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tests.reference.classifier_reference import _merged


def decolle_reference(
    spikes: np.ndarray,
    labels: np.ndarray,
    w0: np.ndarray,
    g: np.ndarray,
    *,
    tau_mem: float,
    tau_out: float,
    theta: float,
    sharpness: float,
    eta: float,
    target: float,
    quiet: float = 0.0,
    floor: float = 0.0,
    busy: float = 0.0,
    feedback: str = "readout",
    tied: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]] | None = None,
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Run one layer over the whole stream with learning on (see the module docstring). ``tied`` =
    ``(unroll, fold)``: ``w0`` are then the free parameters, ``unroll`` makes the weight matrix of them and
    ``fold`` sums a matrix's entries into them; the free parameters are returned."""
    params = np.array(w0, dtype=np.float64)
    unroll, fold = tied if tied is not None else ((lambda v: v), (lambda v: v))
    w = unroll(params)
    n_out, n_in = w.shape
    w_fwd = w.copy()
    hist_t: list[int] = []
    hist_c: list[int] = []
    hist_z: list[np.ndarray] = []
    hist_psi: list[np.ndarray] = []
    hist_y: list[np.ndarray] = []
    hist_u: list[np.ndarray] = []
    out: list[tuple[int, int]] = []
    seg = {"label": -1, "train": 0, "open": False}

    def decay(tau: float, t_from: int, t_to: int) -> float:
        return math.exp(-(t_to - t_from) / tau) if t_to > t_from else 1.0

    def gap(tau: float, s: int, k: int) -> float:
        """The decay from step s to step k, as the product of the per-step factors."""
        f = 1.0
        for m in range(s + 1, k + 1):
            f *= decay(tau, hist_t[m - 1], hist_t[m])
        return f

    def learn_segment() -> None:
        nonlocal w, params
        if not (seg["train"] == 1 and seg["label"] >= 0 and hist_t):
            return
        tgt = np.zeros(g.shape[0])
        tgt[seg["label"]] = target
        grad = np.zeros((n_out, n_in))
        g_y = np.zeros(n_out)
        g_u = np.zeros(n_out)
        last = len(hist_t) - 1
        for k in range(last, -1, -1):
            if k < last:
                g_y = g_y * decay(tau_out, hist_t[k], hist_t[k + 1])
                g_u = g_u * decay(tau_mem, hist_t[k], hist_t[k + 1])
            # the local readout's error at step k; random feedback: the linear loss -tgt . G y[k]
            readout = 0.0 if feedback == "random" else 1.0
            g_y = g_y + g.T @ (readout * (g @ hist_y[k]) - tgt)
            g_u = g_u + hist_psi[k] * g_y  # y[k] = b y[k-1] + z[k], dz/du := psi
            u = hist_u[k]  # the regularisers busy relu(u - theta) + quiet relu(floor - u), on u directly
            g_u = g_u + busy * (u > theta) - quiet * (u < floor)
            grad[:, hist_c[k]] += g_u  # u[k] = a (u[k-1] - theta z[k-1]) + w[:, c_k], the reset a constant
        params = params - eta * fold(grad)
        w = unroll(params)

    def close() -> None:
        if seg["open"]:
            learn_segment()
            if seg["train"] == 1:
                w_fwd[:, :] = w

    for kind, t, a, b in _merged(spikes, labels):
        if kind == "label":
            close()
            for h in (hist_t, hist_c, hist_z, hist_psi, hist_y, hist_u):
                h.clear()  # every segment starts from rest
            seg.update(label=a, train=b, open=True)
            continue
        hist_t.append(t)
        hist_c.append(a)
        k = len(hist_t) - 1
        free = np.zeros(n_out)
        resets = np.zeros(n_out)
        for s in range(k + 1):
            free += gap(tau_mem, s, k) * w_fwd[:, hist_c[s]]
            if s < k:
                resets += gap(tau_mem, s, k) * hist_z[s]
        u = free - theta * resets
        z = (u >= theta).astype(np.float64)
        psi = 1.0 / (1.0 + sharpness * np.abs(u - theta) / theta) ** 2
        y = z.copy()
        for s in range(k):
            y += gap(tau_out, s, k) * hist_z[s]
        hist_z.append(z)
        hist_psi.append(psi)
        hist_y.append(y)
        hist_u.append(u)
        out += [(t, i) for i in np.flatnonzero(z).tolist()]
    close()
    return out, params


def conv_reference(
    spikes: np.ndarray, labels: np.ndarray, k0: np.ndarray, g: np.ndarray, shape: tuple[int, int, int], **kw: float
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """``decolle_reference`` of a convolution layer: kernels ``k0`` (maps, channels * k * k) over inputs of
    ``shape`` (channels, height, width), stride 1, no padding; neuron ``(m * oh + oy) * ow + ox``."""
    maps, taps = k0.shape
    ch, height, width = shape
    k = math.isqrt(taps // ch)
    oh, ow = height - k + 1, width - k + 1
    # (neuron, input, map, tap) of every tied entry, by brute force over the definition
    ties = [
        ((m * oh + oy) * ow + ox, (c * height + oy + dy) * width + ox + dx, m, (c * k + dy) * k + dx)
        for m in range(maps)
        for oy in range(oh)
        for ox in range(ow)
        for c in range(ch)
        for dy in range(k)
        for dx in range(k)
    ]

    def unroll(kernels: np.ndarray) -> np.ndarray:
        w = np.zeros((maps * oh * ow, ch * height * width))
        for i, j, m, q in ties:
            w[i, j] = kernels[m, q]
        return w

    def fold(grad: np.ndarray) -> np.ndarray:
        out = np.zeros((maps, taps))
        for i, j, m, q in ties:
            out[m, q] += grad[i, j]
        return out

    return decolle_reference(spikes, labels, k0, g, tied=(unroll, fold), **kw)  # type: ignore[arg-type]
