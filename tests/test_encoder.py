"""DeltaEncoder and EventTransform: kernels against the slow references, hand cases, batch invariance."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.encoder import DeltaEncoder, DeltaParams, EventTransform, TransformParams
from pipeline.events import EVENT_DTYPE, make_events
from tests.reference.encoder_reference import as_tuples, delta_reference, transform_reference


def _encode_all(enc: DeltaEncoder, frames, times) -> np.ndarray:
    out = []
    for k, (f, t) in enumerate(zip(frames, times, strict=True)):
        ev = enc.encode(f, t)
        if ev.size:  # every event of a frame lies in (previous frame time, this frame time]
            assert ev["t"].min() > times[k - 1]
            assert ev["t"].max() <= t
        out.append(ev)
    return np.concatenate(out)


@pytest.mark.parametrize(
    ("dtype", "refractory_us", "seed"), [(np.uint8, 0, 1), (np.uint8, 700, 2), (np.float64, 0, 3), (np.float64, 300, 4)]
)
def test_delta_matches_reference_on_random_frames(dtype, refractory_us, seed) -> None:
    rng = np.random.default_rng(seed)
    h, w, n = 7, 9, 6
    if dtype == np.uint8:
        frames = rng.integers(0, 256, (n, h, w)).astype(np.uint8)
    else:
        frames = rng.uniform(0.0, 300.0, (n, h, w))
    times = np.cumsum(rng.integers(1, 2000, n)) + 1000
    params = DeltaParams(on_threshold=0.2, off_threshold=0.3, refractory_us=refractory_us, log_eps=1.0)
    got = _encode_all(DeltaEncoder(w, h, params), frames, times)
    want = delta_reference(frames, times, 0.2, 0.3, refractory_us, 1.0)
    assert len(want) > 50
    assert as_tuples(got) == want
    assert np.all(np.diff(got["t"]) >= 0)


def test_static_scene_and_first_frame_emit_nothing() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (5, 6)).astype(np.uint8)
    enc = DeltaEncoder(6, 5)
    assert enc.encode(frame, 0).size == 0
    for k in range(1, 5):
        assert enc.encode(frame, k * 1000).size == 0


@pytest.mark.parametrize("up", [True, False])
def test_brightness_step_gives_exact_counts_and_times(up: bool) -> None:
    eps = 1.0
    dark, bright = 10.0 - eps, 10.0 * math.exp(0.9) - eps  # a log step of exactly 0.9
    a, b = (dark, bright) if up else (bright, dark)
    f0 = np.full((3, 4), a)
    f1 = f0.copy()
    f1[1, 2] = b
    f1[0, 0] = b
    enc = DeltaEncoder(4, 3, DeltaParams(on_threshold=0.2, off_threshold=0.2, log_eps=eps))
    enc.encode(f0, 1000)
    ev = enc.encode(f1, 2000)
    # 0.9 / 0.2 -> 4 crossings at each changed pixel, of one polarity only
    assert len(ev) == 8
    assert set(ev["p"].tolist()) == {1 if up else 0}
    for x, y in ((0, 0), (2, 1)):
        at = ev[(ev["x"] == x) & (ev["y"] == y)]
        assert len(at) == 4
        # crossing k at fraction k*0.2/0.9 of the 1000 µs interval, rounded up
        assert at["t"].tolist() == [1000 + math.ceil(k * 0.2 / 0.9 * 1000 - 1e-9) for k in range(1, 5)]
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() > 1000
    assert ev["t"].max() <= 2000
    # same t: pixel (0, 0) comes before (2, 1) (ties in y-major pixel order)
    assert ev["x"][:2].tolist() == [0, 2]


def test_delta_state_round_trip_and_validation() -> None:
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (5, 4, 4)).astype(np.uint8)
    a = DeltaEncoder(4, 4)
    a.encode(frames[0], 0)
    a.encode(frames[1], 10)
    b = DeltaEncoder(4, 4)
    b.load_state_dict(a.state_dict())
    for k in range(2, 5):
        assert as_tuples(a.encode(frames[k], 10 * k)) == as_tuples(b.encode(frames[k], 10 * k))
    with pytest.raises(ValueError, match="not after"):
        a.encode(frames[0], 40)
    with pytest.raises(ValueError, match="shape"):
        a.encode(np.zeros((3, 4), np.uint8), 100)
    with pytest.raises(ValueError, match="on_threshold"):
        DeltaParams(on_threshold=0.0)


def test_transform_geometry_hand_cases() -> None:
    # DAVIS346 -> 64x48 on a crop; out_x = (x - x0) * out_w // crop_w
    params = TransformParams(in_width=346, in_height=260, out_width=64, out_height=48, crop=(10, 20, 320, 240))
    tr = EventTransform(params)
    ev = make_events([1, 2, 3, 4, 5], [10, 329, 9, 175, 330], [20, 259, 30, 140, 30], [1, 0, 1, 1, 0])
    out = tr(ev)
    assert as_tuples(out) == [(1, 0, 0, 1), (2, 63, 47, 0), (4, 165 * 64 // 320, 120 * 48 // 240, 1)]
    assert tr.counters()["cropped"] == 2
    assert tr.counters()["out"] == 3
    # channels=1: ON only vs merged
    on_only = EventTransform(TransformParams(in_width=4, in_height=4, out_width=2, out_height=2, channels=1,
                                             merge_polarities=False))  # fmt: skip
    out = on_only(make_events([1, 2, 3], [3, 3, 0], [3, 3, 1], [1, 0, 1]))
    assert as_tuples(out) == [(1, 1, 1, 0), (3, 0, 0, 0)]
    assert on_only.counters()["polarity"] == 1
    with pytest.raises(ValueError, match="crop"):
        TransformParams(in_width=10, in_height=10, out_width=5, out_height=5, crop=(6, 0, 5, 5))


def test_background_activity_and_refractory_hand_cases() -> None:
    params = TransformParams(in_width=8, in_height=8, out_width=8, out_height=8, ba_window_us=100)
    tr = EventTransform(params)
    ev = make_events(
        [10, 50, 60, 200, 300, 310],
        [3, 4, 6, 4, 0, 7],
        [3, 4, 6, 3, 0, 7],
        [1, 0, 1, 1, 1, 1],
    )
    # 10: no neighbour yet -> dropped; 50: neighbour (3,3) at 10 -> kept; 60: isolated -> dropped;
    # 200: neighbour (4,4) at 50 is 150 µs old -> dropped; 300, 310: isolated -> dropped
    assert as_tuples(tr(ev)) == [(50, 4, 4, 0)]
    assert tr.counters()["background_activity"] == 5
    # state carries over: (3,3) at 350 is supported by (4,3)... no, (4,3) at 200 is too old; (4,4) too
    assert tr(make_events([350, 360], [3, 2], [4, 4], [1, 1])).size == 1  # 360 sees (3,4) at 350
    refr = EventTransform(TransformParams(in_width=4, in_height=4, out_width=2, out_height=2, refractory_us=50))
    out = refr(make_events([0, 20, 49, 50, 60, 120], [0, 1, 0, 0, 0, 1], [0, 1, 0, 1, 0, 0], [1, 1, 0, 1, 1, 1]))
    # output pixel (0,0) ch1: 0 kept, 20 dropped, 50 kept, 60 dropped, 120 kept; ch0 at 49 kept
    assert as_tuples(out) == [(0, 0, 0, 1), (49, 0, 0, 0), (50, 0, 0, 1), (120, 0, 0, 1)]
    assert refr.counters()["refractory"] == 2


def _random_events(seed: int, n: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 2 * n, n))
    return make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


@pytest.mark.parametrize(("channels", "merge"), [(2, True), (1, False), (1, True)])
def test_transform_matches_reference(channels: int, merge: bool) -> None:
    ev = _random_events(7, 3000, 40, 30)
    kw = {"in_w": 40, "in_h": 30, "crop": (3, 2, 33, 25), "out_w": 10, "out_h": 7, "channels": channels, "merge": merge,
              "ba_us": 150, "refr_us": 60}  # fmt: skip
    tr = EventTransform(TransformParams(in_width=40, in_height=30, crop=(3, 2, 33, 25), out_width=10, out_height=7,
                                        channels=channels, merge_polarities=merge, ba_window_us=150,
                                        refractory_us=60))  # fmt: skip
    want, counts = transform_reference(as_tuples(ev), **kw)
    got = tr(ev)
    assert got.dtype == EVENT_DTYPE
    assert as_tuples(got) == want
    assert tr.counters() == counts
    assert counts["background_activity"] > 0
    assert counts["refractory"] > 0
    assert counts["out"] > 100


_EV = _random_events(11, 600, 20, 16)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, len(_EV)), max_size=8))
def test_transform_batch_invariance(cuts: list[int]) -> None:
    def run(bounds: list[int]) -> tuple[np.ndarray, dict[str, int]]:
        tr = EventTransform(TransformParams(in_width=20, in_height=16, crop=(1, 1, 18, 14), out_width=9,
                                            out_height=7, ba_window_us=200, refractory_us=40))  # fmt: skip
        edges = [0, *sorted(bounds), len(_EV)]
        parts = [tr(_EV[a:b]) for a, b in itertools.pairwise(edges)]
        return np.concatenate(parts), tr.counters()

    whole, c_whole = run([])
    split, c_split = run(cuts)
    for name in ("t", "x", "y", "p"):
        assert np.array_equal(whole[name], split[name])
    assert c_whole == c_split
