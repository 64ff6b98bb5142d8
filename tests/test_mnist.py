"""MNIST IDX reader and the rate encoder that turns images into one labelled event stream."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from nodes.sources.synthesis.kernels.rate import encode_rates
from nodes.sources.synthesis.rate import RateEncoderParams, image_seeds, images_to_stream, iter_stream
from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE
from recordings.datasets.mnist import load_mnist, read_idx


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


def write_mnist(root: Path, images: np.ndarray, labels: np.ndarray, *, gz: bool) -> None:
    for name, arr, magic in (("images-idx3-ubyte", images, 2051), ("labels-idx1-ubyte", labels, 2049)):
        data = idx_bytes(arr, magic)
        path = root / f"train-{name}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)


def test_idx_reader_on_tiny_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([5, 0, 9], np.uint8)
    for gz in (False, True):
        root = tmp_path / ("gz" if gz else "plain")
        root.mkdir()
        write_mnist(root, images, labels, gz=gz)
        im, lb = load_mnist(root, "train")
        np.testing.assert_array_equal(im, images)
        np.testing.assert_array_equal(lb, labels)
    # truncated data: the error names the file and where it ends
    path = tmp_path / "cut-labels"
    path.write_bytes(idx_bytes(labels, 2049)[:10])
    with pytest.raises(RecordingError, match=r"cut-labels.*byte offset 10.*expected 11"):
        read_idx(path, magic=2049, dims=(None,))
    path.write_bytes(idx_bytes(labels, 2049)[:6])
    with pytest.raises(RecordingError, match=r"truncated IDX header at byte offset 6"):
        read_idx(path, magic=2049, dims=(None,))
    with pytest.raises(RecordingError, match=r"bad IDX magic number 2049 at byte offset 0, expected 2051"):
        read_idx(tmp_path / "plain" / "train-labels-idx1-ubyte", magic=2051, dims=(None, 28, 28))
    # a truncated gzip stream and a label file that does not match the images
    gzpath = tmp_path / "gz" / "train-images-idx3-ubyte.gz"
    gzpath.write_bytes(gzpath.read_bytes()[:-20])
    with pytest.raises(RecordingError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_mnist(tmp_path / "gz", "train")
    (tmp_path / "plain" / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels[:2], 2049))
    with pytest.raises(RecordingError, match="3 images but .* 2 labels"):
        load_mnist(tmp_path / "plain", "train")
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path / "plain", "validation")


@pytest.mark.needs_data
def test_real_mnist(data_dir: Path) -> None:
    train_x, train_y = load_mnist(data_dir / "mnist", "train")
    test_x, test_y = load_mnist(data_dir / "mnist", "test")
    assert train_x.shape == (60000, 28, 28)
    assert train_y.shape == (60000,)
    assert test_x.shape == (10000, 28, 28)
    assert test_y.shape == (10000,)
    assert train_y[:5].tolist() == [5, 0, 4, 1, 9]
    assert test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert round(float(train_x.mean()), 4) == 33.3184  # SOURCES.md
    assert np.bincount(train_y).tolist()[:2] == [5923, 6742]


def encode_reference(pix: np.ndarray, seeds: np.ndarray, t0: int, dur: int, rate: float, std: float) -> list:
    """The encoding spelled out in Python; numba's np.random is the legacy Mersenne Twister of numpy."""
    out = []
    for i in range(pix.shape[0]):
        rs = np.random.RandomState(seeds[i])
        ev = []
        for p in range(pix.shape[1]):
            r = pix[i, p] + (std * rs.standard_normal() if std > 0 else 0.0)
            if r <= 0:
                continue
            isi = 1e6 / (r * rate)
            tt = isi * rs.random_sample()
            while tt < dur:
                ev.append((int(np.floor(tt)), p))
                tt += isi * rs.random_sample()
        ev.sort(key=lambda e: e[0])  # stable: equal times keep pixel order
        out += [(t0 + i * dur + t, p) for t, p in ev]
    return out


def test_rate_kernel_matches_reference_and_chunking() -> None:
    rng = np.random.default_rng(4)
    pix = rng.random((4, 30)) * (rng.random((4, 30)) < 0.5)
    seeds = image_seeds(9, 5, 4)
    t, p = encode_rates(pix, seeds, 1000, 20_000, 300.0, 0.2)
    assert list(zip(t.tolist(), p.tolist(), strict=True)) == encode_reference(pix, seeds, 1000, 20_000, 300.0, 0.2)

    images = rng.integers(0, 256, (7, 5, 6), dtype=np.uint8)
    labels = np.arange(7) % 3
    params = RateEncoderParams(max_rate_hz=500.0, duration_us=30_000)
    ev, lab = images_to_stream(images, labels, seed=3, train=False, params=params, t0=100)
    assert ev.dtype == EVENT_DTYPE
    assert lab.dtype == LABEL_DTYPE
    assert np.all(np.diff(ev["t"]) >= 0)
    assert np.all(ev["p"] == 1)
    assert ev["x"].max() < 6
    assert ev["y"].max() < 5
    assert lab["t"].tolist() == [100 + 30_000 * k for k in range(7)]
    assert lab["label"].tolist() == labels.tolist()
    assert not lab["train"].any()
    chunks = list(iter_stream(images, labels, seed=3, train=False, params=params, chunk_images=3, t0=100))
    assert len(chunks) == 3
    assert np.concatenate([c[0] for c in chunks]).tolist() == ev.tolist()
    assert np.concatenate([c[1] for c in chunks]).tolist() == lab.tolist()
    again, _ = images_to_stream(images, labels, seed=3, train=False, params=params, t0=100)
    other, _ = images_to_stream(images, labels, seed=4, train=False, params=params, t0=100)
    assert again.tolist() == ev.tolist()
    assert other.tolist() != ev.tolist()
    # without rate noise a black image is silent and one full pixel fires about 2 * rate * duration
    one = np.zeros((400, 2, 2))
    one[:, 0, 1] = 1.0
    quiet = RateEncoderParams(max_rate_hz=200.0, duration_us=50_000, rate_std=0.0)
    ev, _ = images_to_stream(one, np.zeros(400, int), seed=0, train=True, params=quiet)
    assert set(zip(ev["x"].tolist(), ev["y"].tolist(), strict=True)) == {(1, 0)}
    assert 19.0 < len(ev) / 400 < 21.0
    with pytest.raises(ValueError, match="float images must lie in"):
        images_to_stream(one * 2, np.zeros(400, int), seed=0, train=True)


@pytest.mark.needs_data
def test_rate_counts_on_real_mnist(data_dir: Path) -> None:
    images, labels = load_mnist(data_dir / "mnist", "test")
    n = 500
    ev, _ = images_to_stream(images[:n], labels[:n], seed=0, train=False)
    counts = np.bincount((ev["t"] // RateEncoderParams().duration_us), minlength=n)
    # the thesis: "approximately between 1400 and 3500 spikes" per digit, growing with its ink
    assert 1800 < counts.mean() < 2600
    lo, hi = np.percentile(counts, [5, 95])
    assert lo > 1000
    assert hi < 4000
    ink = images[:n].reshape(n, -1).sum(axis=1)
    assert np.corrcoef(ink, counts)[0, 1] > 0.95
