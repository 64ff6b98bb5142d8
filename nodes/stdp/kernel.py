"""Numba kernels of the online STDP feature extractor (thesis ch. 3, sections 3.2.2-3.2.4).

Only ``@njit`` functions over plain arrays, scalars and tuples of them live here (a layer's geometry,
constants and state arrays arrive as the NamedTuples of ``nodes.stdp.records``); ``nodes.stdp.state``
owns the state, ``nodes.stdp.network`` validates input and calls these kernels.
``tests/reference/stdp_reference.py`` implements the same semantics slowly and literally; both must
agree bit for bit.

Semantics (binding for kernel and reference)
--------------------------------------------
* Input of a layer: spikes ``(t, x, y, c)`` processed one at a time, in order. ``t`` is never used by
  the dynamics; it is only copied to the output spikes an input causes (timescale invariance). Each
  layer keeps an event counter ``n`` (int64), incremented by one for every input spike it receives
  (the first spike gets ``n = 1``). Every input position ``(c, y, x)`` keeps ``last_in`` = counter of
  its last spike (0 = never). ``last_in`` is set to ``n`` *before* the event is integrated, so the
  spike being processed counts as "fired since the reference time".
* Weighted layers (conv and fc) hold non-leaky integrate-and-fire neurons with two accumulators fed by
  the same weights: a learning accumulator ``V_l`` (threshold ``th_learn``) and an inference
  accumulator ``V_i`` (threshold ``th_inf``). No leak, no refractory period, no homeostasis.
* Conv: ``M`` maps, kernel ``KH x KW``, stride 1, valid: output ``(M, H-KH+1, W-KW+1)``. An input
  ``(c, y, x)`` reaches every map and every output position ``(oy, ox)`` with ``oy <= y < oy+KH``,
  ``ox <= x < ox+KW`` with weight ``W[m, c, y-oy, x-ox]``; each reached ("touched") neuron is first
  made current (lazy map reset, below), then ``V_l += w`` and ``V_i += w``.
* A fully connected layer of ``N`` neurons over a ``(C, H, W)`` input is run by the same kernel as a
  conv layer with ``N`` maps, kernel ``(H, W)`` and a 1x1 output; its learning inter-map radius is 0
  (the only position holds every neuron, so a learning spike resets the whole layer, as the thesis
  asks) and its inference radius is 0 with ``wta_inf`` (a spike resets all other neurons) or -1.
  The weight of input ``(c, y, x)`` is ``W[i, j]`` with ``j = (c*H + y)*W + x``.
* Learning (only when enabled): after integration, the touched neurons with ``V_l >= th_learn`` are
  visited in order of decreasing ``V_l`` (ties: lowest canonical flat index ``(m*Ho + y)*Wo + x``).
  Each one that is still ``>= th_learn`` after the resets done so far fires a learning spike:
  (a) STDP (thesis eq. 3.4) on the kernel of its map: for every synapse ``(c, ky, kx)`` of the
  neuron, ``w += a_plus * exp(-beta_plus * w)`` when ``last_in`` of that synapse's input position is
  ``> ref`` of the neuron, else ``w += a_minus``; then ``w`` is clipped to ``[0, 1]``;
  (b) ``V_l = 0``, ``ref = n``; (c) intra-map WTA: every neuron of the map gets ``V_l = 0``,
  ``ref = n`` -- done in O(1) by ``map_ref[m] = n``: a neuron of that map is stale until it is
  next used, and then made current (``V_l = 0``; see "Internal layout" for how); (d) inter-map
  WTA: every neuron of every map within Chebyshev distance ``r_learn`` of the spiking position gets
  ``V_l = 0``, ``ref = n``. Learning spikes are not propagated. Visiting the candidates once in
  sorted order equals "repeatedly pick the largest one still above threshold", because a reset only
  ever sets a value to 0 (< threshold; thresholds are > 0).
* Inference: the touched neurons with ``V_i >= th_inf`` are visited in order of decreasing ``V_i``
  (same ties); each one still ``>= th_inf`` fires: ``V_i = 0``, an output spike ``(t, ox, oy, m)``
  is emitted, and when ``r_inf >= 0`` the inference accumulators of the *other* maps at positions
  within Chebyshev distance ``r_inf`` are set to 0 (``r_inf = 0``: same position only; ``-1``: no
  inference inhibition). Output spikes leave in the order they fired.
* Learning switched off (frozen): ``n`` and ``last_in`` still advance; ``V_l``, ``ref``, ``map_ref``
  and weights are left untouched; inference (given the same weights) is identical either way.
* Pooling (``s x s``, non-overlapping) forwards every spike to ``(c, y // s, x // s)``; partial
  windows at the border are kept, so the pooled size is ``ceil(H / s)``. It is plain numpy in the
  network module.
* Numbers: weights and accumulators are float32 (half the memory traffic of the hot loops, twice the
  SIMD width); an accumulator update is one float32 addition ``V + w``; a comparison ``V >= th`` is
  exact (the network passes the smallest float32 >= ``th``, which selects the same float32 values
  as comparing in float64); the STDP update of a weight is computed in float64 from
  the stored float32 value, clipped, then rounded to float32. The reference does exactly the same.
  Counters, ``ref``, ``map_ref`` and ``last_in`` are int64.
* Cost: per input spike, the receptive field (``KH*KW*M`` neuron updates per accumulator); per
  learning spike, ``C*KH*KW`` synapses and ``(2 r_learn + 1)^2 * M`` resets; map resets are O(1)
  (amortised: once every ``EPOCH_LIMIT`` of them the kernel applies all pending ones, O(Ho*Wo*M)).

Internal layout (``nodes.stdp.state`` converts to and from the canonical layouts of ``state_dict``):
weights flat in ``(C, KH, KW, M)`` order with the kernel columns flipped (stored column ``KW-1-kx``
holds ``kx``), neuron arrays flat in ``(Ho, Wo, M)`` order. With that, the neurons an input spike
reaches in one output row (positions ``ox0..ox1``, all maps) and the weights they use are two
contiguous runs in the same order, so a row is one vectorised loop rather than ``KW`` short ones.
``last_in`` is flat ``(C, H, W)``.

``ref`` is not stored per neuron. Every reset of a neuron is either its map's (intra-map WTA, which
also covers the spiking neuron itself) or its whole position's (inter-map WTA, ``r_learn >= 0``, all
maps), so its reference time is ``max(pos_ref[pos], map_ref[m])``, which ``nodes.stdp.state`` computes
for ``state_dict``. Which ``v_learn`` values a map reset has made stale is kept in int32 epochs (see
``materialize_map_resets``): comparing them fills the float32 vector lanes, where comparing int64
counters took two lanes per neuron (measured: the N-MNIST network 0.44 -> 0.51 M events/s, paired
medians, together with the float hit count of ``_accumulate_both``, 2026-11-30).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    from nodes.stdp.records import Constants, Geometry, LayerArrays

SELECT_MAX = 32  # default cut-off: candidate sets up to this size are searched for their maximum, larger ones sorted
EPOCH_LIMIT = 2**31 - 1  # lazy map resets: the int32 epochs restart (pending resets applied) on reaching it


@numba.njit(cache=True, nogil=True)
def _before(va: float, ka: int, vb: float, kb: int) -> bool:
    """Whether candidate ``a`` (value ``va``, canonical index ``ka``) goes before ``b``."""
    return va > vb or (va == vb and ka < kb)


@numba.njit(cache=True, nogil=True)
def _sort_order(order: np.ndarray, count: int, cand: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
    """``order[:count]`` = the candidate slots by decreasing ``values[cand]``, ties by increasing key.

    Bottom-up merge sort between the two halves of ``order`` (``2 * half`` long, ``count <= half``), no
    allocation; the two runs are addressed by offsets, not by swapping array variables, which would cost
    numba a reference-count update per pass. Keys (canonical indices) are unique, so the order is total
    and any correct sort gives the same result.
    """
    half = order.shape[0] // 2
    for k in range(count):
        order[k] = k
    src = 0
    dst = half
    width = 1
    while width < count:
        for lo in range(0, count, 2 * width):
            mid = min(lo + width, count)
            hi = min(lo + 2 * width, count)
            i = lo
            j = mid
            for k in range(lo, hi):
                if j >= hi:
                    take_i = True
                elif i >= mid:
                    take_i = False
                else:
                    a = order[src + i]
                    b = order[src + j]
                    take_i = not _before(values[cand[b]], keys[b], values[cand[a]], keys[a])
                if take_i:
                    order[dst + k] = order[src + i]
                    i += 1
                else:
                    order[dst + k] = order[src + j]
                    j += 1
        src, dst = dst, src
        width *= 2
    if src != 0:
        for k in range(count):
            order[k] = order[src + k]


@numba.njit(cache=True, nogil=True)
def _stdp(
    w: np.ndarray,
    potentiated: np.ndarray,
    last_in: np.ndarray,
    ref_time: int,
    oy: int,
    ox: int,
    m: int,
    geometry: Geometry,
    constants: Constants,
) -> None:
    """Eq. 3.4 on the kernel of map ``m`` for the neuron at ``(oy, ox)`` with reference ``ref_time``.

    Two passes: a branch-free one depresses every synapse whose input has not fired since the reference
    time and lists the others (``potentiated``, scratch of ``C*KH*KW``), then the listed ones are
    potentiated. Whether an input fired is as good as random, and as a branch it was mispredicted about
    every other synapse. Each weight's update is computed in float64 from its float32 value, clipped to
    [0, 1], and stored rounded to float32.
    """
    c_count, h_in, w_in, kh, kw, m_count = geometry
    a_minus = constants.a_minus
    a_plus = constants.a_plus
    beta_plus = constants.beta_plus
    n_pot = 0
    for c in range(c_count):
        for ky in range(kh):
            row = (c * h_in + oy + ky) * w_in + ox
            wbase = ((c * kh + ky) * kw + kw - 1) * m_count + m  # kernel columns are stored flipped
            for kx in range(kw):
                wi = wbase - kx * m_count
                fired = last_in[row + kx] > ref_time
                potentiated[n_pot] = wi
                n_pot += fired
                w0 = w[wi]
                wv = float(w0) + a_minus
                wv = 0.0 if wv < 0.0 else wv
                wv = 1.0 if wv > 1.0 else wv
                w[wi] = w0 if fired else np.float32(wv)
    for k in range(n_pot):
        wi = potentiated[k]
        wv = float(w[wi])
        wv = wv + a_plus * math.exp(-beta_plus * wv)
        wv = 0.0 if wv < 0.0 else wv
        wv = 1.0 if wv > 1.0 else wv
        w[wi] = wv


@numba.njit(cache=True, nogil=True)
def _accumulate(v: np.ndarray, w: np.ndarray, nb: int, wb: int, count: int, th: float | np.float32) -> int:
    """``v[nb + m] += w[wb + m]`` for ``m < count``; returns 1 if any reached ``th``, else 0.

    Unsigned indices spare the negative-index fix-up. The "any" flag is a bool on purpose: numba widens
    integer flags (``int32 | int32``) to int64, which made the compiled loop convert every comparison
    mask to 64-bit lanes before the OR; a boolean OR-reduction stays in the float32 vector lanes
    (measured on the N-MNIST network: conv2 about 1.5x faster, same results).
    """
    vb = np.uint64(nb)
    wbu = np.uint64(wb)
    hits = False
    for m in range(np.uint64(count)):
        a = v[vb + m] + w[wbu + m]
        v[vb + m] = a
        hits |= a >= th
    return int(hits)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _accumulate_both(
    v_learn: np.ndarray,
    v_inf: np.ndarray,
    w: np.ndarray,
    nb: int,
    wb: int,
    count: int,
    th_learn: float | np.float32,
    th_inf: float | np.float32,
) -> tuple[bool, bool]:
    """Both accumulators in one pass over the weights (loaded once); returns the two "any reached" flags.

    The flags are float counts of the neurons at threshold (exact: at most a row of neurons), summed
    with ``reassoc`` so the sum vectorises; the accumulator updates are single additions, which
    reassociation cannot change. A boolean OR kept eight AVX-512 mask registers live (seven exist) and
    spilled one every iteration; this loop is the N-MNIST conv2's largest cost. The fused loop below
    keeps the boolean flags: there the float count measured slower.
    """
    vb = np.uint64(nb)
    wbu = np.uint64(wb)
    hits_l = np.float32(0.0)
    hits_i = np.float32(0.0)
    for m in range(np.uint64(count)):
        wv = w[wbu + m]
        a = v_learn[vb + m] + wv
        v_learn[vb + m] = a
        hits_l += np.float32(1.0) if a >= th_learn else np.float32(0.0)
        b = v_inf[vb + m] + wv
        v_inf[vb + m] = b
        hits_i += np.float32(1.0) if b >= th_inf else np.float32(0.0)
    return bool(hits_l > 0), bool(hits_i > 0)


@numba.njit(cache=True, nogil=True)
def _accumulate_both_current(
    v_learn: np.ndarray,
    v_inf: np.ndarray,
    map_epoch_row: np.ndarray,
    tp_row: np.ndarray,
    pos_epoch: np.ndarray,
    w: np.ndarray,
    pos0: int,
    n_pos: int,
    m_count: int,
    wb: int,
    th_learn: float | np.float32,
    th_inf: float | np.float32,
) -> tuple[bool, bool]:
    """``_accumulate_both`` for a row with a pending lazy map reset: a neuron whose map was reset after
    its position was last made current (``map_epoch[m] > pos_epoch[pos]``) integrates from 0.

    ``map_epoch_row`` holds the maps' epochs repeated for the ``KW`` positions a row can cover, and
    ``tp_row`` (scratch) gets each position's epoch repeated for its maps, so that the comparison is
    one branch-free vector pass over the row (per-position loops ran conv1's 16 maps as scalar code).
    A near-copy of ``_accumulate_both`` on purpose: the plain loop runs for most rows, and one function
    with a ``make_current`` flag measured 5-8 % slower on the N-MNIST conv2 (2026-11-30).
    """
    mu = np.uint64(m_count)
    for p in range(n_pos):
        tp = pos_epoch[pos0 + p]
        tb = np.uint64(p * m_count)
        for m in range(mu):
            tp_row[tb + m] = tp
    vb = np.uint64(pos0 * m_count)
    wbu = np.uint64(wb)
    hits_l = False
    hits_i = False
    for m in range(np.uint64(n_pos * m_count)):
        wv = w[wbu + m]
        a = (np.float32(0.0) if map_epoch_row[m] > tp_row[m] else v_learn[vb + m]) + wv
        v_learn[vb + m] = a
        hits_l |= a >= th_learn
        b = v_inf[vb + m] + wv
        v_inf[vb + m] = b
        hits_i |= b >= th_inf
    return hits_l, hits_i


@numba.njit(cache=True, nogil=True)
def _search_next(
    cand: np.ndarray,
    cand_m: np.ndarray,
    keys: np.ndarray,
    count: int,
    values: np.ndarray,
    th: float | np.float32,
    map_ref: np.ndarray,
    n: int,
    lazy: bool,
) -> int:
    """The slot of the candidate that fires next (largest value >= ``th``, ties: lowest key), or -1.

    With ``lazy`` (learning accumulators) a candidate whose map was reset during this input (at
    counter ``n``; every candidate was integrated by it) is made current first (value 0), so it
    cannot be picked.
    """
    best = -1
    best_v = values[0]
    best_k = 0
    for k in range(count):
        idx = cand[k]
        stale = False
        if lazy and map_ref[cand_m[k]] >= n:
            values[idx] = 0.0
            stale = True
        if not stale:
            v = values[idx]
            if v >= th and (best < 0 or _before(v, keys[k], best_v, best_k)):
                best = k
                best_v = v
                best_k = keys[k]
    return best


@numba.njit(cache=True, nogil=True)
def _walk_next(
    order: np.ndarray,
    k_next: int,
    cand: np.ndarray,
    cand_m: np.ndarray,
    count: int,
    values: np.ndarray,
    th: float | np.float32,
    map_ref: np.ndarray,
    n: int,
    lazy: bool,
) -> int:
    """The first position ``p >= k_next`` in the sorted ``order`` whose candidate is still ``>= th``, or
    ``count`` when none is left. ``lazy`` as for ``_search_next``."""
    p = k_next
    fires = False
    while not fires and p < count:
        k = order[p]
        idx = cand[k]
        stale = False
        if lazy and map_ref[cand_m[k]] >= n:
            values[idx] = 0.0
            stale = True
        if not stale and values[idx] >= th:
            fires = True
        else:
            p += 1
    return p


@numba.njit(cache=True, nogil=True)
def _collect(
    v: np.ndarray,
    pos0: int,
    n_pos: int,
    m_count: int,
    n_positions: int,
    th: float | np.float32,
    cand: np.ndarray,
    cand_m: np.ndarray,
    keys: np.ndarray,
    n_cand: int,
) -> int:
    """Append the neurons of positions ``pos0 .. pos0+n_pos-1`` with ``v >= th``; returns the new length.

    For each: its flat index, its map and its canonical index ``m * Ho*Wo + pos`` (no division).
    """
    for p in range(n_pos):
        base = np.uint64((pos0 + p) * m_count)
        # a vectorised "any reached" first: most positions of a row have none
        hit = False
        for m in range(np.uint64(m_count)):
            hit |= v[base + m] >= th
        if hit:
            # branch-free append: every neuron is written at the end, only the ones at threshold are kept
            # (the arrays hold every neuron an input reaches, so the write one past the kept ones fits)
            key0 = pos0 + p
            ibase = (pos0 + p) * m_count
            for m in range(m_count):
                cand[n_cand] = ibase + m
                cand_m[n_cand] = m
                keys[n_cand] = m * n_positions + key0
                n_cand += v[base + np.uint64(m)] >= th
    return n_cand


@numba.njit(cache=True, nogil=True)
def weighted_layer_run(
    in_t: np.ndarray,
    in_x: np.ndarray,
    in_y: np.ndarray,
    in_c: np.ndarray,
    arrays: LayerArrays,
    geometry: Geometry,
    constants: Constants,
    learning: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Run one conv (or fc-as-conv) layer over a batch of input spikes, mutating its state in place.

    The records are ``nodes.stdp.records``'s: ``arrays`` the layer's state (``counters`` = ``[n, learning
    spikes, inference spikes]``; ``pos_ref``: counter of each position's last inter-map reset; ``lazy``:
    the epochs of pending map resets, a cache of the kernel, all zeros valid once
    ``materialize_map_resets`` has run), ``geometry`` its ``(C, H, W, KH, KW, M)``, ``constants`` the
    thresholds, radii and STDP amplitudes, and two limits that change no result: ``select_max``
    (candidate sets up to this size are searched, larger ones sorted; ``SELECT_MAX`` is the measured
    sweet spot, tests run both ways) and ``epoch_limit`` (where the epochs restart; ``EPOCH_LIMIT``,
    tests use a small one).
    Returns ``(t, x, y, c, count, consumed)``: the first ``count`` entries of the four arrays are the
    inference spikes of the first ``consumed`` inputs, in firing order. ``consumed < len(in_t)`` only
    when the output arrays could overflow (more than four spikes per input so far); the caller then runs
    the remaining inputs in another call (the state carries over, so the result is the same).
    """
    w, v_learn, v_inf, pos_ref, map_ref, last_in, lazy, counters = arrays
    c_count, h_in, w_in, kh, kw, m_count = geometry
    th_learn = constants.th_learn
    th_inf = constants.th_inf
    r_learn = constants.r_learn
    r_inf = constants.r_inf
    select_max = constants.select_max
    epoch_limit = constants.epoch_limit
    ho = h_in - kh + 1
    wo = w_in - kw + 1

    n_events = in_t.shape[0]
    # neurons an input spike reaches, at most (also its most inference spikes): a fully connected layer's
    # input reaches its one position, not kh * kw of them
    most = min(kh, ho) * min(kw, wo) * m_count
    # The output arrays are never reallocated here (swapping array variables inside the loop would cost
    # numba reference-count updates): when one more input could overflow them, the run stops early and
    # says how many inputs it consumed; the caller runs the rest.
    cap = 4 * n_events + most
    out_t = np.empty(cap, np.int64)
    out_x = np.empty(cap, np.uint16)  # the coordinate type of SPIKE_DTYPE, and of the next layer's input
    out_y = np.empty(cap, np.uint16)
    out_c = np.empty(cap, np.uint16)
    n_out = 0

    n_positions = ho * wo
    cand_l = np.empty(most, np.int64)
    cand_lm = np.empty(most, np.int64)
    keys_l = np.empty(most, np.int64)
    cand_i = np.empty(most, np.int64)
    cand_im = np.empty(most, np.int64)
    keys_i = np.empty(most, np.int64)
    order = np.empty(2 * most, np.int64)  # the sort's two halves
    potentiated = np.empty(c_count * kh * kw, np.int64)  # scratch of _stdp
    n = counters[0]
    # lazy map resets (see ``materialize_map_resets``): the epoch advances with every map reset
    map_epoch = lazy[1 : 1 + m_count]
    pos_epoch = lazy[1 + m_count :]
    epoch = np.int64(lazy[0])
    map_epoch_row = np.empty(kw * m_count, np.int32)  # map_epoch repeated for the kw positions of a row
    for j in range(kw):
        map_epoch_row[j * m_count : (j + 1) * m_count] = map_epoch
    tp_row = np.empty(kw * m_count, np.int32)
    n_learn_spikes = counters[1]
    n_inf_spikes = counters[2]

    consumed = n_events
    for e in range(n_events):
        if n_out + most > cap:
            consumed = e
            break
        c = numba.int64(in_c[e])
        y = numba.int64(in_y[e])
        x = numba.int64(in_x[e])
        t = in_t[e]
        n += 1
        last_in[(c * h_in + y) * w_in + x] = n
        oy0 = max(0, y - kh + 1)
        oy1 = min(y, ho - 1)
        ox0 = max(0, x - kw + 1)
        ox1 = min(x, wo - 1)
        nl = 0
        ni = 0
        # One row of the receptive field is one contiguous span: the neurons of positions ox0..ox1
        # (all maps) and, because kernel columns are stored flipped, their weights in the same order.
        n_pos = ox1 - ox0 + 1
        span = n_pos * m_count
        for oy in range(oy0, oy1 + 1):
            ky = y - oy
            pos0 = oy * wo + ox0
            nb = pos0 * m_count
            wb = ((c * kh + ky) * kw + kw - 1 - (x - ox0)) * m_count
            if learning:
                # a row with a position last made current before the newest map reset applies the
                # pending lazy resets of all its neurons while it integrates (a no-op where none is due)
                stale_row = False
                for pos in range(pos0, pos0 + n_pos):
                    stale_row |= pos_epoch[pos] != epoch
                if stale_row:
                    hit_l, hit_i = _accumulate_both_current(
                        v_learn, v_inf, map_epoch_row, tp_row, pos_epoch, w, pos0, n_pos, m_count, wb, th_learn, th_inf
                    )
                    for pos in range(pos0, pos0 + n_pos):
                        pos_epoch[pos] = epoch  # current after this row
                else:
                    hit_l, hit_i = _accumulate_both(v_learn, v_inf, w, nb, wb, span, th_learn, th_inf)
                if hit_l:
                    nl = _collect(v_learn, pos0, n_pos, m_count, n_positions, th_learn, cand_l, cand_lm, keys_l, nl)
            else:
                hit_i = _accumulate(v_inf, w, nb, wb, span, th_inf) > 0
            if hit_i:
                ni = _collect(v_inf, pos0, n_pos, m_count, n_positions, th_inf, cand_i, cand_im, keys_i, ni)

        # Learning spikes: repeatedly the largest learning accumulator still at threshold fires. A small
        # candidate set is searched for its maximum each time; a large one is sorted once (a reset only
        # ever lowers a value to 0, so the sorted order of the candidates still above threshold holds).
        if nl > 0:
            sorted_l = nl > select_max
            if sorted_l:
                _sort_order(order, nl, cand_l, keys_l, v_learn)
            k_next = 0
            while True:
                if sorted_l:
                    p = _walk_next(order, k_next, cand_l, cand_lm, nl, v_learn, th_learn, map_ref, n, True)
                    if p == nl:
                        break
                    k = order[p]
                    k_next = p + 1
                else:
                    k = _search_next(cand_l, cand_lm, keys_l, nl, v_learn, th_learn, map_ref, n, True)
                    if k < 0:
                        break
                idx = cand_l[k]
                m = cand_lm[k]
                pos = keys_l[k] - m * n_positions
                oy = pos // wo
                ox = pos - oy * wo
                _stdp(w, potentiated, last_in, max(pos_ref[pos], map_ref[m]), oy, ox, m, geometry, constants)
                n_learn_spikes += 1
                # (b) and (c): the map's reset covers the neuron itself; (d) resets whole positions (the
                # spiking one included, r_learn >= 0), and leaves them current
                map_ref[m] = n
                if epoch == epoch_limit:  # all pending resets applied, epochs restart (amortised O(1))
                    materialize_map_resets(v_learn, lazy, m_count)
                    map_epoch_row[:] = 0
                    epoch = np.int64(0)
                epoch += 1
                map_epoch[m] = epoch
                for j in range(kw):
                    map_epoch_row[j * m_count + m] = epoch
                for py in range(max(0, oy - r_learn), min(ho - 1, oy + r_learn) + 1):
                    # the positions px0..px1 of a row are one contiguous run of neurons
                    px0 = max(0, ox - r_learn)
                    px1 = min(wo - 1, ox + r_learn)
                    pb = np.uint64((py * wo + px0) * m_count)
                    for j in range(np.uint64((px1 - px0 + 1) * m_count)):
                        v_learn[pb + j] = 0.0
                    for px in range(px0, px1 + 1):
                        pos_ref[py * wo + px] = n
                        pos_epoch[py * wo + px] = epoch

        # Inference spikes, the same way (no lazy resets on this side). The selection is written out
        # again on purpose: one helper for both loops measured 5-30 % slower, inlined or not (N-MNIST
        # network, benchmarks/bench_stdp.py, alternating runs, 2026-12-06).
        if ni > 0:
            sorted_i = ni > select_max
            if sorted_i:
                _sort_order(order, ni, cand_i, keys_i, v_inf)
            k_next = 0
            while True:
                if sorted_i:
                    p = _walk_next(order, k_next, cand_i, cand_im, ni, v_inf, th_inf, map_ref, n, False)
                    if p == ni:
                        break
                    k = order[p]
                    k_next = p + 1
                else:
                    k = _search_next(cand_i, cand_im, keys_i, ni, v_inf, th_inf, map_ref, n, False)
                    if k < 0:
                        break
                idx = cand_i[k]
                m = cand_im[k]
                pos = keys_i[k] - m * n_positions
                oy = pos // wo
                ox = pos - oy * wo
                v_inf[idx] = 0.0
                out_t[n_out] = t
                out_x[n_out] = ox
                out_y[n_out] = oy
                out_c[n_out] = m
                n_out += 1
                n_inf_spikes += 1
                if r_inf >= 0:
                    # the other maps at the positions within r_inf (branch-free over unsigned indices, so
                    # that it compiles to contiguous vector stores)
                    mu = np.uint64(m)
                    for py in range(max(0, oy - r_inf), min(ho - 1, oy + r_inf) + 1):
                        for px in range(max(0, ox - r_inf), min(wo - 1, ox + r_inf) + 1):
                            pb = np.uint64((py * wo + px) * m_count)
                            for mm in range(np.uint64(m_count)):
                                v_inf[pb + mm] = v_inf[pb + mm] if mm == mu else np.float32(0.0)

    lazy[0] = epoch
    counters[0] = n
    counters[1] = n_learn_spikes
    counters[2] = n_inf_spikes
    return out_t, out_x, out_y, out_c, n_out, consumed


@numba.njit(cache=True, nogil=True)
def materialize_map_resets(v_learn: np.ndarray, lazy: np.ndarray, m_count: int) -> None:
    """Apply every pending lazy map reset, so ``v_learn`` holds the effective values, and restart the
    epochs (every position current at epoch 0).

    ``lazy`` (int32) = ``[epoch, map_epoch (M), pos_epoch (Ho*Wo)]``: ``epoch`` counts the map resets
    since the last restart, ``map_epoch[m]`` is the epoch of map ``m``'s last reset and ``pos_epoch``
    the epoch at which a position's neurons were last made current; neuron ``(pos, m)`` is stale (its
    ``v_learn`` is really 0) when ``map_epoch[m] > pos_epoch[pos]``. A cache of the kernel, not state.
    """
    map_epoch = lazy[1 : 1 + m_count]
    pos_epoch = lazy[1 + m_count :]
    for pos in range(pos_epoch.shape[0]):
        tp = pos_epoch[pos]
        for m in range(m_count):
            if map_epoch[m] > tp:
                v_learn[pos * m_count + m] = 0.0
    lazy[:] = 0
