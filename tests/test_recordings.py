"""Readers on the real recordings (exact values), format detection, info/convert, and the N-MNIST dataset.

Expected values were computed once with the pure-Python decoders of tests/reference/recordings_reference.py
(written from the format descriptions, sharing no code with ``recordings``); the slow test recomputes
them. AEDAT 4.0 is compared with dv-processing's own reader.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import recordings as R
from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from tests.reference import recordings_reference as ref

# file, format, events, first (t, x, y, p), last, on, off, width, height, checksum (reference.checksum)
REAL = [
    ("aedat2/pyaedattools_IMU_rotDisk.aedat", "aedat2", 374296, (341678, 11, 164, 1), (3508437, 44, 132, 0),
     163098, 211198, 240, 180, "742e51b133bf8d7ce66d0438e983967fbb83238aef6334d49a4c19dcf2adb09f"),
    ("aedat2/jaer_MovingDarkBox.aedat", "aedat2", 489834, (946459683, 12, 108, 1), (986269729, 73, 14, 0),
     246923, 242911, 128, 128, "f2b93cafdc091d916b98bac67d4c989b1464b517418a674732d7f79a7a32dbfe"),
    ("aedat2/tonic_sample_aedat_header.aedat", "aedat2", 0, None, None, 0, 0, 346, 260,
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("evt/expelliarmus_evt2_sample.raw", "evt2", 539481, (1317888, 237, 121, 1), (1367888, 210, 142, 1),
     367855, 171626, None, None, "076740c7ac710cc98883bc22f9931c4d8dcbc398dea194684402bfc8cf4b81e4"),
    ("evt/expelliarmus_evt3_sample.raw", "evt3", 219596, (11718656, 874, 200, 0), (11727457, 1218, 572, 1),
     115532, 104064, None, None, "de1e457893b79519095f58ab171c474048d82da4c116c9fa3813e21aece5df25"),
    ("evt/tonic_sample_ncars.dat", "dat", 2009, (0, 25, 8, 0), (99952, 75, 28, 1), 1350, 659, None, None,
     "cc9e8d7c644e1100d996bd143f18de5cf994f486818a65ac94653c97e05a30e9"),
    ("nmnist/Train/0/00002.bin", "nmnist", 5028, (937, 10, 30, 1), (305341, 11, 17, 1), 2509, 2519, 34, 34,
     "356af38f3672bb94faed66d04aba6036f773857e7840d4b3bd3584507827642a"),
    ("nmnist/Test/7/00001.bin", "nmnist", 3330, (5087, 7, 7, 1), (307827, 26, 8, 1), 1718, 1612, 34, 34,
     "28a46d4e91927cc76d6c7c6e69b619105fc6cacb14f7032c6bc5984540f0f812"),
    ("aedat4/tonic_sample.aedat4", "aedat4", 111954, (1605537493718345, 154, 204, 0),
     (1605537494308262, 88, 237, 1), 55023, 56931, 320, 240,
     "c657d7ebb1942120808b26e0d6d07d1ae3d4b7578d56c0e2a12c9c59b5e5576f"),
    ("aedat4/faery_davis346.aedat4", "aedat4", 78830, (1589163147368868, 215, 164, 1),
     (1589163149728813, 233, 205, 1), 41257, 37573, 346, 260,
     "7900932c45afc74a7f553a4b3fe4454b4c04fcc65dd17f68c782ad18835ae9cd"),
]  # fmt: skip

NMNIST_TOTAL = 3464177
NMNIST_CHECKSUM = "7c3a5987464dd1b56d899eb17f768adb9f8d77978a623bf0199c25663607e19f"
NMNIST_LABELS = {0: 84, 1: 107, 2: 86, 3: 77, 4: 90, 5: 76, 6: 76, 7: 92, 8: 73, 9: 89}


def _sum(a: np.ndarray) -> str:
    return ref.checksum(a["t"], a["x"], a["y"], a["p"])


def _tuple(e: np.void) -> tuple[int, int, int, int]:
    return (int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"]))


@pytest.mark.needs_data
@pytest.mark.parametrize("row", REAL, ids=[r[0] for r in REAL])
def test_real_file_exact_values(data_dir: Path, row: tuple) -> None:
    name, fmt, n, first, last, on, off, width, height, digest = row
    path = data_dir / name
    assert R.detect_format(path) == fmt
    rec = R.open_recording(path)
    assert (rec.format, rec.width, rec.height) == (fmt, width, height)
    a = rec.read_all()
    assert a.dtype == EVENT_DTYPE
    assert a.size == n
    if n:
        assert _tuple(a[0]) == first
        assert _tuple(a[-1]) == last
        assert np.all(np.diff(a["t"]) >= 0), "timestamps must be non-decreasing"
    assert int(np.count_nonzero(a["p"])) == on
    assert a.size - on == off
    assert _sum(a) == digest
    # Batch boundaries never change the events; every batch but the last is full.
    batches = list(rec.batches(7777))
    assert all(b.size == 7777 for b in batches[:-1])
    joined = np.concatenate([b.view(np.uint8) for b in batches]).view(EVENT_DTYPE) if batches else a[:0]
    assert _sum(joined) == digest
    summary = R.info(path)
    json.dumps(summary)
    assert summary["events"] == n
    assert summary["on"] == on
    assert summary["off"] == off
    assert (summary["width"], summary["height"], summary["format"]) == (width, height, fmt)
    assert summary["t_first"] == (first[0] if n else None)
    assert summary["t_last"] == (last[0] if n else None)


@pytest.mark.needs_data
def test_evt3_time_low_backwards_is_counted_and_harmless(data_dir: Path) -> None:
    rec = R.open_recording(data_dir / "evt/expelliarmus_evt3_sample.raw")
    rec.read_all()
    _, back, clamped = ref.evt3((data_dir / "evt/expelliarmus_evt3_sample.raw").read_bytes())
    assert rec.metadata["time_low_backwards"] == back == 9
    assert rec.metadata["clamped_events"] == clamped == 0


@pytest.mark.needs_data
def test_aedat4_matches_dv_processing_reader(data_dir: Path) -> None:
    import dv_processing as dv

    for name in ("aedat4/tonic_sample.aedat4", "aedat4/faery_davis346.aedat4"):
        reader = dv.io.MonoCameraRecording(str(data_dir / name))
        parts = []
        while (store := reader.getNextEventBatch()) is not None:
            parts.append(store.numpy())
        theirs = np.concatenate(parts)
        ours = R.open_recording(data_dir / name).read_all()
        assert ours.size == theirs.size
        for a, b in (("t", "timestamp"), ("x", "x"), ("y", "y"), ("p", "polarity")):
            np.testing.assert_array_equal(ours[a], theirs[b].astype(np.int64))


@pytest.mark.needs_data
def test_aedat4_truncated_real_file(data_dir: Path, tmp_path: Path) -> None:
    full = (data_dir / "aedat4/tonic_sample.aedat4").read_bytes()
    for cut in (13, 2000, len(full) // 2):
        path = tmp_path / f"cut{cut}.aedat4"
        path.write_bytes(full[:cut])
        with pytest.raises(RecordingError, match=f"cut{cut}.aedat4"):
            R.open_recording(path).read_all()


@pytest.mark.needs_data
def test_aedat4_real_file_with_junk_in_a_packet_is_an_error_not_a_hang(data_dir: Path, tmp_path: Path) -> None:
    """64 random bytes in the middle of a real recording: dv-processing 2.0.4's reader loops there forever
    (with the GIL held); ours names the damaged packet."""
    data = bytearray((data_dir / "aedat4/tonic_sample.aedat4").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path = tmp_path / "junk.aedat4"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"junk\.aedat4 at byte 469651: corrupt event packet"):
        R.open_recording(path).read_all()


@pytest.mark.needs_data
def test_nmnist_dataset(data_dir: Path) -> None:
    root = data_dir / "nmnist"
    ds = R.NMnistDataset(root)
    assert len(ds) == 850
    assert ds.label_counts() == NMNIST_LABELS
    assert ds.split_counts() == {"Train": 800, "Test": 50}
    # Labels and paths agree with labels.csv.
    with (root / "labels.csv").open() as f:
        rows = {(r["split"], int(r["index"])): (int(r["label"]), r["path"]) for r in csv.DictReader(f)}
    for s in ds.samples:
        label, rel = rows[(s.split, s.index)]
        assert s.label == label
        assert s.path == data_dir / rel
    assert ds.samples[0].split == "Train"
    assert ds.samples[0].index == 1
    assert ds.samples[-1].split == "Test"
    np.testing.assert_array_equal(ds.labels, [s.label for s in ds.samples])
    events = [ds.load(i) for i in range(len(ds))]
    allev = np.concatenate([e.view(np.uint8) for e in events]).view(EVENT_DTYPE)
    assert allev.size == NMNIST_TOTAL
    assert _sum(allev) == NMNIST_CHECKSUM
    test_only = R.NMnistDataset(root, split="Test")
    assert len(test_only) == 50
    assert {s.split for s in test_only.samples} == {"Test"}
    bare = R.NMnistDataset(root / "Test")
    assert len(bare) == 50
    assert bare.samples[0].split is None
    summary = R.info(root)
    json.loads(json.dumps(summary))
    assert summary["events"] == NMNIST_TOTAL
    assert summary["samples"] == 850
    assert summary["labels"] == {str(k): v for k, v in NMNIST_LABELS.items()}
    assert summary["splits"] == {"Train": 800, "Test": 50}
    assert summary["on"] + summary["off"] == NMNIST_TOTAL
    assert (summary["width"], summary["height"]) == (34, 34)


@pytest.mark.needs_data
def test_convert_real_files(data_dir: Path, tmp_path: Path) -> None:
    # EVT 3.0 (no size in the header) -> npy -> AEDAT 4.0 (size from the events) -> N-MNIST refused (too wide).
    src = data_dir / "evt/expelliarmus_evt3_sample.raw"
    original = R.open_recording(src).read_all()
    out = R.convert(src, tmp_path / "a.npy")
    assert out["format"] == "npy"
    assert out["events"] == original.size
    out = R.convert(tmp_path / "a.npy", tmp_path / "a.aedat4")
    assert out["format"] == "aedat4"
    assert out["events"] == original.size
    assert (out["width"], out["height"]) == (int(original["x"].max()) + 1, int(original["y"].max()) + 1)
    assert _sum(R.open_recording(tmp_path / "a.aedat4").read_all()) == _sum(original)
    with pytest.raises(RecordingError, match=r"a\.bin: cannot hold the events of .*34x34 sensor"):
        R.convert(src, tmp_path / "a.bin")
    # A real N-MNIST sample survives bin -> aedat4 -> bin byte for byte.
    sample = data_dir / "nmnist/Train/0/00002.bin"
    R.convert(sample, tmp_path / "s.aedat4")
    info = R.convert(tmp_path / "s.aedat4", tmp_path / "s.bin")
    assert info["events"] == 5028
    assert (info["width"], info["height"]) == (34, 34)
    assert (tmp_path / "s.bin").read_bytes() == sample.read_bytes()
    # an existing destination (say, arguments swapped) is never replaced
    before = (tmp_path / "a.npy").read_bytes()
    with pytest.raises(RecordingError, match=r"a\.npy: already exists"):
        R.convert(tmp_path / "s.bin", tmp_path / "a.npy")
    assert (tmp_path / "a.npy").read_bytes() == before


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("row", [r for r in REAL if r[1] != "aedat4"], ids=[r[0] for r in REAL if r[1] != "aedat4"])
def test_reference_decoders_agree_on_real_files(data_dir: Path, row: tuple) -> None:
    name, fmt, n, *_, digest = row
    expected = ref.decode_file(data_dir / name, fmt)
    assert len(expected) == n
    assert ref.checksum_events(expected) == digest
    ours = R.open_recording(data_dir / name).read_all()
    np.testing.assert_array_equal(
        np.stack([ours["t"], ours["x"], ours["y"], ours["p"]], axis=1).astype(np.int64),
        np.array(expected, dtype=np.int64).reshape(-1, 4),
    )


@pytest.mark.slow
@pytest.mark.needs_data
def test_reference_nmnist_folder_checksum(data_dir: Path) -> None:
    ds = R.NMnistDataset(data_dir / "nmnist")
    expected: list[tuple[int, int, int, int]] = []
    for s in ds.samples:
        expected.extend(ref.nmnist(s.path.read_bytes()))
    assert len(expected) == NMNIST_TOTAL
    assert ref.checksum_events(expected) == NMNIST_CHECKSUM


def test_detection_and_unknown_format(tmp_path: Path) -> None:
    junk = tmp_path / "junk.xyz"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(RecordingError, match=r"junk\.xyz.*supported:.*aedat4.*evt3.*npy"):
        R.open_recording(junk)
    with pytest.raises(RecordingError, match="cannot read"):
        R.detect_format(tmp_path / "missing.aedat4")
    with pytest.raises(RecordingError, match="is a folder, not an event file"):
        R.open_recording(tmp_path)
    raw = tmp_path / "noversion.raw"
    raw.write_bytes(b"% Date 2020\n% plugin x\n\x00\x00\x00\x00")
    with pytest.raises(RecordingError, match="EVT version"):
        R.detect_format(raw)
    # Content decides, not the suffix: an EVT 3.0 file named .dat is EVT 3.0, an AEDAT 2.0 named .bin too.
    evt3 = tmp_path / "x.dat"
    evt3.write_bytes(b"% evt 3.0\n% format EVT3;height=720;width=1280\n" + np.array([0x8000], "<u2").tobytes())
    assert R.detect_format(evt3) == "evt3"
    rec = R.open_recording(evt3)
    assert (rec.width, rec.height) == (1280, 720)
    a2 = tmp_path / "x.bin"
    a2.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n")
    assert R.detect_format(a2) == "aedat2"
    assert R.open_recording(a2).read_all().size == 0
