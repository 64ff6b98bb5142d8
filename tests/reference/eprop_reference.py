"""A slow reference of the e-prop readout that gets its weight changes by backpropagation through time.

The kernel (``nodes/classifier/eprop_kernel.py``) runs forward only: eligibility traces carry, at every
spike, the derivative of each filtered output with respect to each weight. This reference does what an
offline trainer does instead: it simulates the stream keeping the whole history (membranes recomputed
from scratch as sums over every past spike, not updated incrementally), and at the close of each training
segment it runs a backward pass over that history for the segment's summed loss
``sum_k 1/2 |y[k] - target onehot|^2``, with the same two conventions e-prop makes (``dz/du := psi``, the
reset a constant). Every label record starts from rest, so the history is the segment's. Agreement of
the two is the claim that the online rule is this gradient, exactly. Returns the records as tuples and
the final learning weights.
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference.classifier_reference import _argmax, _merged


def eprop_reference(
    spikes: np.ndarray,
    labels: np.ndarray,
    w0: np.ndarray,
    *,
    tau_mem: float,
    tau_out: float,
    theta: float,
    sharpness: float,
    eta: float,
    target: float,
) -> tuple[list[tuple], np.ndarray]:
    """Run the whole stream with learning on (see the module docstring); ``w0`` the initial weights."""
    n_cls, n_in = w0.shape
    w = np.array(w0, dtype=np.float64)
    w_fwd = w.copy()
    # history of the spikes processed: time, channel, forward weights used, and per step the
    # pre-reset membranes, spikes, surrogate derivatives, filtered outputs
    hist_t: list[int] = []
    hist_c: list[int] = []
    hist_w: list[np.ndarray] = []
    hist_u: list[np.ndarray] = []
    hist_z: list[np.ndarray] = []
    hist_psi: list[np.ndarray] = []
    hist_y: list[np.ndarray] = []
    out: list[tuple] = []
    seg = {"label": -1, "train": 0, "open": False, "inputs": 0, "first": 0}
    scores = [0.0] * n_cls

    def decay(tau: float, t_from: int, t_to: int) -> float:
        return math.exp(-(t_to - t_from) / tau) if t_to > t_from else 1.0

    def gap(tau: float, s: int, k: int) -> float:
        """The decay from step s to step k, as the product of the per-step factors."""
        f = 1.0
        for m in range(s + 1, k + 1):
            f *= decay(tau, hist_t[m - 1], hist_t[m])
        return f

    def learn_segment() -> None:
        nonlocal w
        first, last = seg["first"], len(hist_t) - 1
        if not (seg["train"] == 1 and seg["label"] >= 0 and last >= first):
            return
        tgt = np.zeros(n_cls)
        tgt[seg["label"]] = target
        grad = np.zeros((n_cls, n_in))
        g_y = np.zeros(n_cls)
        g_u = np.zeros(n_cls)
        for k in range(last, -1, -1):
            if k < last:
                g_y = g_y * decay(tau_out, hist_t[k], hist_t[k + 1])
                g_u = g_u * decay(tau_mem, hist_t[k], hist_t[k + 1])
            if k >= first:
                g_y = g_y + (hist_y[k] - tgt)
            g_u = g_u + hist_psi[k] * g_y  # y[k] = b y[k-1] + z[k], dz/du := psi
            grad[:, hist_c[k]] += g_u  # u[k] = a (u[k-1] - theta z[k-1]) + w[:, c_k], the reset a constant
        w = w - eta * grad

    def close(t: int) -> None:
        if seg["open"]:
            pred = _argmax(scores) if seg["inputs"] > 0 else -1
            out.append((t, pred, seg["label"], 1, seg["train"], tuple(np.float32(v) for v in scores)))
            learn_segment()
            if seg["train"] == 1:
                w_fwd[:, :] = w

    for kind, t, a, b in _merged(spikes, labels):
        if kind == "label":
            close(t)
            for h in (hist_t, hist_c, hist_w, hist_u, hist_z, hist_psi, hist_y):
                h.clear()  # every segment starts from rest
            seg.update(label=a, train=b, open=True, inputs=0, first=0)
            scores = [0.0] * n_cls
            continue
        hist_t.append(t)
        hist_c.append(a)
        hist_w.append(w_fwd.copy())
        k = len(hist_t) - 1
        # every past spike's weight, decayed to now; minus every past output spike's reset
        free = np.zeros(n_cls)
        resets = np.zeros(n_cls)
        for s in range(k + 1):
            free += gap(tau_mem, s, k) * hist_w[s][:, hist_c[s]]
            if s < k:
                resets += gap(tau_mem, s, k) * hist_z[s]
        u = free - theta * resets
        z = (u >= theta).astype(np.float64)
        psi = 1.0 / (1.0 + sharpness * np.abs(u - theta) / theta) ** 2
        y = z.copy()
        for s in range(k):
            y += gap(tau_out, s, k) * hist_z[s]
        hist_u.append(u)
        hist_z.append(z)
        hist_psi.append(psi)
        hist_y.append(y)
        scores = [scores[i] + float(free[i]) for i in range(n_cls)]
        seg["inputs"] += 1
        if z.any():
            out.append((t, _argmax(scores), -1, 0, seg["train"], tuple(np.float32(v) for v in scores)))
    last_spike = int(spikes["t"][-1]) if len(spikes) else -(2**63)
    close(max(last_spike, int(labels["t"][-1]) if len(labels) else -(2**63)))
    return out, w
