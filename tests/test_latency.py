"""Latency (time-to-first-spike) coding of static images, and the MNIST source that uses it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.sources.mnist import MnistConfig, MnistSource
from nodes.sources.synthesis.latency import LatencyEncoderParams, latency_stream
from pipeline.config import build_params
from pipeline.errors import ConfigError
from pipeline.node import NodeContext
from recordings.datasets.mnist import load_mnist
from tests.reference.latency_reference import latency_reference


def events_of(images: np.ndarray, params: LatencyEncoderParams, t0: int = 0) -> list[tuple[int, int, int]]:
    ev, _ = latency_stream(images, np.zeros(len(images), np.int64), train=True, params=params, t0=t0)
    return [(int(t), int(x), int(y)) for t, x, y in zip(ev["t"], ev["x"], ev["y"], strict=True)]


@pytest.mark.parametrize("kind", ["linear", "log"])
@pytest.mark.parametrize("normalize", [True, False])
def test_the_kernel_agrees_with_the_reference_on_random_images(kind: str, normalize: bool) -> None:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 9, 7), dtype=np.uint8)
    images[0, :3] = 0  # dark rows never spike
    params = LatencyEncoderParams(kind=kind, duration_us=2_000, threshold=0.1, normalize=normalize, tau_us=700.0)  # type: ignore[arg-type]
    want = latency_reference((images / 255.0).tolist(), 5, 2_000, kind, params.tau, 0.1)
    assert events_of(images, params, t0=5) == want
    assert len(want) > 50


def test_a_tiny_image_spikes_at_hand_computed_times() -> None:
    image = np.array([[[1.0, 0.5, 0.0]]])
    lin = LatencyEncoderParams(kind="linear", duration_us=1000, threshold=0.0, normalize=False, tau_us=100.0)
    # 1.0 at once, 0.5 after tau/2, 0.0 never (not above the threshold)
    assert events_of(image, lin) == [(0, 0, 0), (50, 1, 0)]
    log = LatencyEncoderParams(kind="log", duration_us=1000, threshold=0.25, normalize=False, tau_us=100.0)
    # t = tau ln(x / (x - th)): 100 ln(4/3) = 28.77, 100 ln(2) = 69.31
    assert events_of(image, log) == [(28, 0, 0), (69, 1, 0)]


@pytest.mark.parametrize("kind", ["linear", "log"])
def test_normalisation_puts_the_weakest_spiking_pixel_in_the_last_microsecond(kind: str) -> None:
    params = LatencyEncoderParams(kind=kind, duration_us=5_000, threshold=0.2)  # type: ignore[arg-type]
    images = np.array([[[52, 255, 51]]], np.uint8)  # 52/255 is the weakest value above 0.2; 51/255 = 0.2
    ev = events_of(images, params)
    assert [e[1] for e in ev] == [1, 0]
    brightest = 0.0 if kind == "linear" else params.tau * math.log(1 / 0.8)
    assert ev[0][0] == math.floor(brightest)
    assert 4_990 <= ev[-1][0] <= 4_999


def test_brighter_pixels_spike_no_later_and_each_pixel_spikes_at_most_once() -> None:
    rng = np.random.default_rng(1)
    images = rng.random((3, 12, 12))
    for kind in ("linear", "log"):
        params = LatencyEncoderParams(kind=kind, duration_us=10_000, threshold=0.05)  # type: ignore[arg-type]
        ev, recs = latency_stream(images, np.arange(3), train=False, params=params)
        assert np.all(np.diff(ev["t"]) >= 0)
        img = ev["t"] // 10_000
        keys = img * 144 + ev["y"].astype(np.int64) * 12 + ev["x"]
        assert np.unique(keys).size == len(ev)
        values = images[img, ev["y"], ev["x"]]
        for k in range(3):
            v, t = values[img == k], ev["t"][img == k]
            assert np.all(np.diff(t[np.argsort(-v, kind="stable")]) >= 0)  # brighter: no later
        assert recs["t"].tolist() == [0, 10_000, 20_000]
        assert recs["train"].tolist() == [0, 0, 0]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 6),
    cut=st.integers(0, 6),
    kind=st.sampled_from(["linear", "log"]),
    threshold=st.floats(0.01, 0.9),
)
def test_the_stream_is_deterministic_and_the_same_whatever_the_chunking(
    seed: int, n: int, cut: int, kind: str, threshold: float
) -> None:
    images = np.random.default_rng(seed).integers(0, 256, (n, 5, 6), dtype=np.uint8)
    params = LatencyEncoderParams(kind=kind, duration_us=3_000, threshold=threshold)  # type: ignore[arg-type]
    whole = events_of(images, params, t0=7)
    assert whole == events_of(images, params, t0=7)
    cut = min(cut, n)
    parts = events_of(images[:cut], params, t0=7) if cut else []
    parts += events_of(images[cut:], params, t0=7 + cut * 3_000) if cut < n else []
    assert parts == whole


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"code": "latency", "latency": "cubic"}, "latency"),
        ({"code": "latency", "latency_threshold": 1.5}, "threshold must be in"),
        ({"code": "latency", "latency": "log", "latency_threshold": 0.0}, "needs threshold > 0"),
        ({"code": "rate", "latency": "log"}, "latency is an option of the other code"),
        ({"code": "latency", "max_rate_hz": 100.0}, "max_rate_hz is an option of the other code"),
        ({"code": "morse"}, "code"),
    ],
)
def test_the_mnist_source_refuses_bad_or_misplaced_latency_options(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_params(MnistConfig, table, "nodes.source")


def test_the_mnist_source_builds_the_latency_encoder_from_its_options() -> None:
    cfg = build_params(MnistConfig, {"code": "latency", "latency": "log", "latency_threshold": 0.2}, "nodes.source")
    params = cfg.latency_params()
    assert params.kind == "log"
    assert params.threshold == 0.2
    assert math.isclose(params.tau * math.log((0.2 + 1 / 255) / (1 / 255)), 49_999.0)


@pytest.mark.needs_data
def test_the_mnist_source_streams_latency_coded_digits_one_spike_per_bright_enough_pixel(data_dir: Path) -> None:
    config = build_params(
        MnistConfig,
        {"code": "latency", "chunk": 7, "phases": [{"split": "test", "samples": 20}]},
        "nodes.source",
    )
    source = MnistSource("source", config, NodeContext("source", "g"))
    source._data["test"] = load_mnist(data_dir / "mnist", "test")
    order = np.arange(20)
    chunks = list(source.chunks("test", order, 100, train=False))
    events = np.concatenate([c[0] for c in chunks])
    labels = np.concatenate([c[1] for c in chunks])
    images = source._data["test"][0][:20]
    # every pixel at or above the weakest value that fits the window (threshold + 1/255) once, nothing else
    assert len(events) == int((images / 255 >= 0.01 + 1 / 255).sum())
    assert len(events) > 2000
    assert labels["t"].tolist() == [100 + 50_000 * k for k in range(20)]
    assert np.all(np.diff(events["t"]) >= 0)
    # the same stream as encoding all 20 digits at once: the chunking does not show
    whole, _ = latency_stream(
        images, labels["label"].astype(np.int64), train=False, params=config.latency_params(), t0=100
    )
    np.testing.assert_array_equal(events, whole)
