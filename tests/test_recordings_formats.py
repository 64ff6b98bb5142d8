"""Hand-made inputs with hand-computed expectations, writer round trips, Hypothesis properties and
damaged files, for every format. Real-file tests are in test_recordings.py."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recordings as R
from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, make_events
from recordings.formats.aedat3 import encode_aedat3
from recordings.formats.nmnist import encode_nmnist
from tests.reference import recordings_reference as ref


def _rows(a: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in a]


def _read(path: Path) -> np.ndarray:
    return R.open_recording(path).read_all()


def _random_events(rng: np.random.Generator, n: int, w: int, h: int, t_max: int) -> np.ndarray:
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


# ------------------------------------------------------------------------------------------ N-MNIST


def _nmnist_record(x: int, y: int, p: int, t: int) -> bytes:
    return ((x << 32) | (y << 24) | (p << 23) | t).to_bytes(5, "big")


def test_nmnist_overflow_marker_and_hand_values(tmp_path: Path) -> None:
    data = (
        _nmnist_record(3, 4, 1, 100)
        + _nmnist_record(0, 240, 0, 0)  # overflow marker: dropped, +8192 from here on
        + _nmnist_record(33, 33, 0, (1 << 23) - 1)
        + _nmnist_record(0, 240, 1, 5)
        + _nmnist_record(1, 2, 1, 7)
    )
    path = tmp_path / "s.bin"
    path.write_bytes(data)
    expected = [(100, 3, 4, 1), (8192 + (1 << 23) - 1, 33, 33, 0), (16384 + 7, 1, 2, 1)]
    assert _rows(_read(path)) == expected == ref.nmnist(data)
    # A file that starts with the byte '%' (x = 37) is still taken for N-MNIST, not a Prophesee header,
    # and x = 37 lies outside the 34x34 sensor: a corrupt record, named with its offset.
    percent = tmp_path / "percent.bin"
    percent.write_bytes(_nmnist_record(3, 4, 1, 100) + _nmnist_record(37, 10, 1, 0x0A0A))
    assert R.detect_format(percent) == "nmnist"
    with pytest.raises(RecordingError, match=r"percent\.bin at byte 5: address outside the sensor"):
        _read(percent)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(_nmnist_record(3, 4, 1, 100) * 2 + _nmnist_record(5, 34, 0, 200))
    with pytest.raises(RecordingError, match=r"outside\.bin at byte 10: address outside the sensor"):
        _read(outside)
    (tmp_path / "bad" / "1").mkdir(parents=True)
    (tmp_path / "bad" / "1" / "00001.bin").write_bytes(outside.read_bytes())
    with pytest.raises(RecordingError, match=r"00001\.bin at byte 10: address outside the sensor"):
        R.NMnistDataset(tmp_path / "bad").load(0)
    # The same through the dataset fast path.
    (tmp_path / "ds" / "7").mkdir(parents=True)
    (tmp_path / "ds" / "7" / "00012.bin").write_bytes(data)
    ds = R.NMnistDataset(tmp_path / "ds")
    assert len(ds) == 1
    assert ds.samples[0].label == 7
    assert ds.samples[0].index == 12
    assert _rows(ds.load(0)) == expected


def test_nmnist_random_against_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, 5 * 20000, dtype=np.uint8)
    raw[0::5] %= 34  # addresses inside the sensor
    raw[1::5] %= 34
    raw[1::5][rng.random(20000) < 0.01] = 240  # sprinkle overflow markers
    path = tmp_path / "r.bin"
    path.write_bytes(raw.tobytes())
    a = _read(path)
    assert _rows(a) == ref.nmnist(raw.tobytes())
    assert all(b.size <= 999 for b in R.open_recording(path).batches(999))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, (1 << 23) - 1), st.integers(0, 33), st.integers(0, 33), st.integers(0, 1)),
                min_size=1, max_size=200))  # fmt: skip
def test_nmnist_roundtrip_property(tmp_path: Path, rows: list[tuple[int, int, int, int]]) -> None:
    events = make_events(*(np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)))
    path = tmp_path / "p.bin"
    R.write_recording(path, events, 34, 34)
    assert path.stat().st_size == 5 * len(rows)
    assert _rows(_read(path)) == [tuple(r) for r in rows]
    assert ref.nmnist(encode_nmnist(events)) == [tuple(r) for r in rows]


def test_nmnist_writer_refuses_what_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "bad.bin"
    with pytest.raises(ValueError, match="x = 300"):
        R.write_recording(path, make_events([0], [300], [0], [1]), None, None)
    with pytest.raises(ValueError, match="34x34 sensor: found y = 34"):
        R.write_recording(path, make_events([0], [0], [34], [1]), None, None)
    with pytest.raises(ValueError, match="23-bit"):
        R.write_recording(path, make_events([1 << 23], [0], [0], [1]), None, None)
    with pytest.raises(ValueError, match="23-bit"):
        R.write_recording(path, make_events([-1], [0], [0], [1]), None, None)
    with pytest.raises(ValueError, match="EVENT_DTYPE"):
        R.write_recording(path, np.zeros((3, 4)), None, None)
    with pytest.raises(ValueError, match="suffixes"):
        R.write_recording(tmp_path / "x.txt", make_events([0], [0], [0], [1]), 1, 1)
    assert not path.exists()


# ----------------------------------------------------------------------------------------- AEDAT 2.0


def _aedat2(chip: str | None, pairs: list[tuple[int, int]], lf: bytes = b"\r\n") -> bytes:
    head = b"#!AER-DAT2.0" + lf + b"# Data format is int32 address, int32 timestamp" + lf
    if chip:
        head += b"# AEChip: " + chip.encode() + lf
    return head + b"".join(struct.pack(">II", a, t) for a, t in pairs)


def test_aedat2_davis_layout_flip_skip_and_wrap(tmp_path: Path) -> None:
    def dvs(x: int, y: int, p: int) -> int:
        return (y << 22) | (x << 12) | (p << 11)

    pairs = [
        (dvs(0, 0, 1), 10),
        (0x80000000 | 123, 20),  # APS/IMU word: skipped
        (dvs(239, 179, 0) | 0x400, 30),  # external input event: skipped
        (dvs(239, 179, 0), 0xFFFFFFF0),
        (dvs(5, 6, 1), 0x00000005),  # wrapped: + 2**32
        (dvs(140 & 0xFF, 143, 0), 0x00000006),  # address starts with the byte '#': still data
    ]
    data = _aedat2("eu.seebetter.ini.chips.davis.DAVIS240C", pairs)
    path = tmp_path / "d.aedat"
    path.write_bytes(data)
    rec = R.open_recording(path)
    assert (rec.format, rec.width, rec.height, rec.metadata["layout"]) == ("aedat2", 240, 180, "davis")
    expected = [(10, 0, 179, 1), (0xFFFFFFF0, 239, 0, 0), (2**32 + 5, 5, 173, 1), (2**32 + 6, 140, 36, 0)]
    assert struct.pack(">I", dvs(140, 143, 0))[:1] == b"#"
    assert _rows(rec.read_all()) == expected == ref.aedat2(data)[0]


def test_aedat2_dvs128_without_chip_line(tmp_path: Path) -> None:
    def dvs(x: int, y: int, raw_p: int) -> int:
        return (y << 8) | (x << 1) | raw_p

    pairs = [(dvs(0, 0, 0), 1), (dvs(127, 127, 1), 2), (0x8000 | 3, 3), (dvs(10, 20, 0), 4)]
    data = _aedat2(None, pairs, lf=b"\n")
    path = tmp_path / "box.aedat"
    path.write_bytes(data)
    rec = R.open_recording(path)
    assert (rec.width, rec.height, rec.metadata["layout"]) == (128, 128, "dvs128")
    expected = [(1, 0, 127, 1), (2, 127, 0, 0), (4, 10, 107, 1)]  # raw polarity 0 = ON, y flipped
    assert _rows(rec.read_all()) == expected == ref.aedat2(data)[0]
    # one damaged (wide) address among many DVS128 ones: still DVS128, and the damage is named, where
    # guessing DAVIS from it would have decoded the whole file into other events
    many = [(dvs(i % 128, i % 100, i % 2), i) for i in range(300)]
    many[150] = (many[150][0] | 0x00400000, 150)
    damaged = tmp_path / "damaged.aedat"
    damaged.write_bytes(_aedat2(None, many, lf=b"\n"))
    assert R.open_recording(damaged).metadata["layout"] == "dvs128"
    offset = len(_aedat2(None, [], lf=b"\n")) + 150 * 8
    with pytest.raises(RecordingError, match=rf"damaged\.aedat at byte {offset}: address outside the sensor"):
        _read(damaged)


# ----------------------------------------------------------------------------------------- AEDAT 3.1


def test_aedat3_multi_packet_with_other_packets(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    events = _random_events(rng, 10000, 346, 260, 1 << 33)  # spans several 2**31 overflows
    data = encode_aedat3(events, 346, 260, packet_events=700, source="DAVIS346", extra_packets=True)
    path = tmp_path / "x.aedat"
    path.write_bytes(data)
    rec = R.open_recording(path)
    assert (rec.format, rec.width, rec.height) == ("aedat3", 346, 260)
    a = rec.read_all()
    assert _rows(a) == _rows(events) == ref.aedat3(data)
    assert int(rec.metadata["skipped_packets"]["0"]) > 14  # one special packet before each polarity packet
    # write_recording picks the writer by suffix and reads back the same.
    R.write_recording(tmp_path / "y.aedat3", events, 346, 260)
    assert _rows(_read(tmp_path / "y.aedat3")) == _rows(events)


def test_aedat3_invalid_events_are_skipped(tmp_path: Path) -> None:
    events = make_events([1, 2, 3], [1, 2, 3], [4, 5, 6], [1, 0, 1])
    data = bytearray(encode_aedat3(events, 10, 10))
    start = data.find(b"#!END-HEADER\r\n") + 14 + 28
    data[start + 8] &= 0xFE  # clear the valid bit of the second event
    path = tmp_path / "v.aedat"
    path.write_bytes(bytes(data))
    assert _rows(_read(path)) == [(1, 1, 4, 1), (3, 3, 6, 1)] == ref.aedat3(bytes(data))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 1 << 40), st.integers(0, 639), st.integers(0, 479), st.integers(0, 1)),
             max_size=150),
    st.integers(1, 64),
)  # fmt: skip
def test_aedat3_roundtrip_property(tmp_path: Path, rows: list[tuple[int, int, int, int]], per_packet: int) -> None:
    rows = sorted(rows)
    events = (
        make_events(*(np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)))
        if rows
        else np.zeros(0, EVENT_DTYPE)
    )
    data = encode_aedat3(events, 640, 480, packet_events=per_packet)
    path = tmp_path / "h.aedat"
    path.write_bytes(data)
    assert _rows(_read(path)) == rows == ref.aedat3(data)


# ---------------------------------------------------------------------------------------- Prophesee


def _evt3_words(*words: tuple[int, int]) -> bytes:
    return np.array([(k << 12) | v for k, v in words], dtype="<u2").tobytes()


def test_evt3_hand_values_vectors_clamp_and_wrap(tmp_path: Path) -> None:
    body = _evt3_words(
        (0x2, 5),  # event before any TIME_HIGH: dropped
        (0x8, 0xFFF),
        (0x6, 100),
        (0x0, 7),  # y = 7
        (0x2, 0x800 | 3),  # ON at x 3
        (0x6, 90),  # TIME_LOW backwards: the next event is clamped to 0xFFF<<12 | 100
        (0x3, 0x000 | 20),  # base x 20, OFF
        (0x4, 0b100000000101),  # x 20, 22, 31
        (0x5, 0b00000011),  # x 32, 33 (base advanced by 12)
        (0xA, 0x101),  # external trigger: no CD event
        (0xE, 0x123),
        (0x7, 0x5),
        (0xF, 0xABC),
        (0x8, 0x001),  # TIME_HIGH smaller: wrap-around of the 24-bit time
        (0x6, 0x002),
        (0x2, 9),
    )
    head = b"% evt 3.0\n% geometry 64x32\n% end\n"
    path = tmp_path / "h.raw"
    path.write_bytes(head + body)
    rec = R.open_recording(path)
    assert (rec.format, rec.width, rec.height) == ("evt3", 64, 32)
    t0 = (0xFFF << 12) | 100
    expected = [(t0, 3, 7, 1), (t0, 20, 7, 0), (t0, 22, 7, 0), (t0, 31, 7, 0), (t0, 32, 7, 0), (t0, 33, 7, 0),
                ((1 << 24) + (1 << 12) + 2, 9, 7, 0)]  # fmt: skip
    got = rec.read_all()
    assert _rows(got) == expected
    events, back, clamped = ref.evt3(head + body)
    assert events == expected
    assert (back, clamped) == (1, 5)
    assert rec.metadata["time_low_backwards"] == 1
    assert rec.metadata["clamped_events"] == 5


def test_evt2_hand_values_and_wrap(tmp_path: Path) -> None:
    def cd(kind: int, ts: int, x: int, y: int) -> int:
        return (kind << 28) | (ts << 22) | (x << 11) | y

    words = [cd(1, 1, 2, 3), (8 << 28) | 0xFFFFFFF, cd(1, 5, 639, 479), cd(0, 63, 0, 0), 0xA << 28, 0xE << 28,
             (8 << 28) | 2, cd(0, 0, 1, 1)]  # fmt: skip
    data = b"% evt 2.0\n% format EVT2;height=480;width=640\n" + np.array(words, "<u4").tobytes()
    path = tmp_path / "e.raw"
    path.write_bytes(data)
    rec = R.open_recording(path)
    assert (rec.width, rec.height) == (640, 480)
    expected = [((0xFFFFFFF << 6) | 5, 639, 479, 1), ((0xFFFFFFF << 6) | 63, 0, 0, 0), (((1 << 28) + 2) << 6, 1, 1, 0)]
    assert _rows(rec.read_all()) == expected == ref.evt2(data)


def test_evt_random_streams_against_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    # EVT 3.0: random valid words with a slowly rising TIME_HIGH.
    kinds = rng.choice(
        [0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0xA, 0xE], size=30000, p=[0.1, 0.3, 0.1, 0.1, 0.1, 0.2, 0.05, 0.05]
    )
    vals = rng.integers(0, 0x1000, 30000)
    vals[kinds == 0x0] &= 0x3FF
    vals[kinds == 0x3] &= 0x87F
    words = (kinds << 12) | vals
    words[::500] = (0x8 << 12) | (np.arange(words[::500].size) % 4096)
    data = b"% evt 3.0\n" + words.astype("<u2").tobytes()
    path = tmp_path / "r3.raw"
    path.write_bytes(data)
    a = _read(path)
    events, _, _ = ref.evt3(data)
    assert _rows(a) == events
    assert len(events) > 10000
    assert np.all(np.diff(a["t"]) >= 0)
    # EVT 2.0
    kinds2 = rng.choice([0, 1, 8, 0xA], size=20000, p=[0.45, 0.45, 0.05, 0.05])
    w2 = (kinds2.astype(np.int64) << 28) | rng.integers(0, 1 << 28, 20000)
    data2 = b"% evt 2.0\n" + w2.astype("<u4").tobytes()
    path2 = tmp_path / "r2.raw"
    path2.write_bytes(data2)
    assert _rows(_read(path2)) == ref.evt2(data2)


def test_dat_hand_values(tmp_path: Path) -> None:
    recs = np.array([(5, (1 << 28) | (7 << 14) | 3), (0xFFFFFFFF, 0), (2, (1 << 28) | 1)], dtype="<u4")
    data = (
        b"% Data file containing Event2D events.\n% Version 2\n% Width 40\n% Height 30\n" + b"\x00\x08" + recs.tobytes()
    )
    path = tmp_path / "c.dat"
    path.write_bytes(data)
    rec = R.open_recording(path)
    assert (rec.format, rec.width, rec.height) == ("dat", 40, 30)
    assert _rows(rec.read_all()) == [(5, 3, 7, 1), (0xFFFFFFFF, 0, 0, 0), (2**32 + 2, 1, 0, 1)] == ref.dat(data)


# ------------------------------------------------------------------------------------- npy and AEDAT 4


def test_npy_roundtrip_and_conversion(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    events = _random_events(rng, 5000, 100, 80, 10**6)
    R.write_recording(tmp_path / "e.npy", events, None, None)
    assert _rows(_read(tmp_path / "e.npy")) == _rows(events)
    other = np.zeros(3, dtype=[("t", "<u4"), ("x", "<i4"), ("y", "<i2"), ("p", "?")])
    other["t"], other["x"], other["y"], other["p"] = [1, 2, 3], [4, 5, 6], [7, 8, 9], [True, False, True]
    np.save(tmp_path / "o.npy", other)
    assert _rows(_read(tmp_path / "o.npy")) == [(1, 4, 7, 1), (2, 5, 8, 0), (3, 6, 9, 1)]
    fields = [("t", "i8"), ("x", "i4"), ("y", "i4"), ("p", "i4")]
    cases = (
        ("f.npy", np.zeros(3, dtype=[("t", "f8"), ("x", "i4"), ("y", "i4"), ("p", "i4")])),
        ("n.npy", np.zeros((3, 4), dtype=np.int64)),
        ("r.npy", np.array([(1, -1, 0, 0)], dtype=fields)),
    )
    for name, bad in cases:
        np.save(tmp_path / name, bad)
        with pytest.raises(RecordingError, match=name):
            _read(tmp_path / name)


def test_aedat4_written_file_is_read_identically_by_dv_processing(tmp_path: Path) -> None:
    import dv_processing as dv

    rng = np.random.default_rng(11)
    events = _random_events(rng, 25000, 320, 240, 10**7)
    path = tmp_path / "w.aedat4"
    R.write_recording(path, events, 320, 240)
    reader = dv.io.MonoCameraRecording(str(path))
    assert reader.getEventResolution() == (320, 240)
    parts = []
    while (store := reader.getNextEventBatch()) is not None:
        parts.append(store.numpy())
    theirs = np.concatenate(parts)
    np.testing.assert_array_equal(theirs["timestamp"], events["t"])
    np.testing.assert_array_equal(theirs["x"], events["x"])
    np.testing.assert_array_equal(theirs["y"], events["y"])
    np.testing.assert_array_equal(theirs["polarity"], events["p"])
    rec = R.open_recording(path)
    assert (rec.format, rec.width, rec.height) == ("aedat4", 320, 240)
    assert _rows(rec.read_all()) == _rows(events)
    with pytest.raises(ValueError, match="outside the 100x100"):
        R.write_recording(tmp_path / "small.aedat4", events, 100, 100)


@pytest.mark.parametrize("compression", ["NONE", "LZ4", "LZ4_HIGH", "ZSTD", "ZSTD_HIGH"])
def test_aedat4_every_compression_reads_like_dv_processing_writes_it(tmp_path: Path, compression: str) -> None:
    """Our AEDAT 4.0 reader against files dv-processing wrote with each of its compressions, with a frame
    stream beside the events (skipped) and events spread over several packets."""
    import dv_processing as dv

    rng = np.random.default_rng(5)
    events = _random_events(rng, 3000, 64, 48, 10**6)
    config = dv.io.MonoCameraWriter.Config("cam")
    config.addEventStream((64, 48))
    config.addFrameStream((64, 48))
    config.compression = getattr(dv.CompressionType, compression)
    path = tmp_path / f"{compression}.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), config)
    for part in np.array_split(events, 3):
        writer.writeFrame(dv.Frame(int(part["t"][0]), np.full((48, 64), 7, np.uint8)))
        fields = (part["t"].tolist(), part["x"].tolist(), part["y"].tolist(), part["p"].astype(bool).tolist())
        writer.writeEventPacket(dv.EventPacket(dv.EventPacket.EventVector(list(map(dv.Event, *fields)))))
    del writer
    rec = R.open_recording(path)
    assert (rec.width, rec.height) == (64, 48)
    assert rec.metadata["streams"] == ["events", "frames"]
    assert _rows(rec.read_all()) == _rows(events)
    small = list(rec.batches(100))  # one packet per batch: still arrays of their own that a replay may shift
    assert all(b.flags.writeable and b.dtype == EVENT_DTYPE for b in small)
    assert _rows(np.concatenate(small)) == _rows(events)


def test_aedat4_damaged_packet_is_an_error_at_its_offset(tmp_path: Path) -> None:
    """Bytes overwritten inside an LZ4 event packet made dv-processing 2.0.4 loop forever; our reader
    reports the packet with the file and its byte offset."""
    rng = np.random.default_rng(6)
    path = tmp_path / "w.aedat4"
    R.write_recording(path, _random_events(rng, 60_000, 320, 240, 10**7), 320, 240)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"bad\.aedat4 at byte \d+: (corrupt event packet|a packet of stream)"):
        R.open_recording(bad).read_all()


def test_aedat4_event_outside_the_stated_sensor_names_its_packet(tmp_path: Path) -> None:
    import dv_processing as dv

    path = tmp_path / "outside.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("cam", (20, 20)))
    for k in range(3):
        xs = [5] * 10 if k != 1 else [5] * 9 + [30]  # the second packet holds x = 30 on a 20x20 sensor
        writer.writeEventPacket(
            dv.EventPacket(dv.EventPacket.EventVector([dv.Event(k * 100 + i, x, 3, True) for i, x in enumerate(xs)]))
        )
    del writer
    rec = R.open_recording(path)
    with pytest.raises(
        RecordingError, match=r"outside\.aedat4 at byte (\d+): corrupt event packet \(an event outside the 20x20"
    ):
        rec.read_all()
    # batch by batch the first packet still arrives, then the second is refused
    batches = rec.batches(10)
    assert next(batches).size == 10
    with pytest.raises(RecordingError, match="outside the 20x20 sensor"):
        next(batches)


# ------------------------------------------------------------------------------------ damaged files


def _fixtures(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(9)
    ev = _random_events(rng, 3000, 34, 34, 300000)
    files = {}
    files["nmnist"] = tmp_path / "f.bin"
    R.write_recording(files["nmnist"], ev, 34, 34)
    files["aedat3"] = tmp_path / "f.aedat3"
    R.write_recording(files["aedat3"], ev, 34, 34)
    files["npy"] = tmp_path / "f.npy"
    R.write_recording(files["npy"], ev, 34, 34)
    files["aedat4"] = tmp_path / "f.aedat4"
    R.write_recording(files["aedat4"], ev, 34, 34)
    a2 = [((y << 22) | (x << 12) | (p << 11), t) for t, x, y, p in _rows(ev)]
    files["aedat2"] = tmp_path / "f.aedat"
    files["aedat2"].write_bytes(_aedat2("eu.seebetter.ini.chips.davis.DAVIS240C", a2))
    words = []
    for k, (t, x, y, p) in enumerate(_rows(ev)):
        if k % 50 == 0:
            words += [(0x8 << 12) | (t >> 12)]
        words += [(0x6 << 12) | (t & 0xFFF), y, (0x2 << 12) | (p << 11) | x]
    files["evt3"] = tmp_path / "f.raw"
    files["evt3"].write_bytes(b"% evt 3.0\n% geometry 34x34\n" + np.array(words, "<u2").tobytes())
    w2 = [(8 << 28) | (t >> 6) if k % 2 == 0 else (p << 28) | ((t & 63) << 22) | (x << 11) | y
          for t, x, y, p in _rows(ev) for k in range(2)]  # fmt: skip
    files["evt2"] = tmp_path / "f2.raw"
    files["evt2"].write_bytes(b"% evt 2.0\n% geometry 34x34\n" + np.array(w2, "<u4").tobytes())
    d = np.array([[t, (p << 28) | (y << 14) | x] for t, x, y, p in _rows(ev)], dtype="<u4")
    files["dat"] = tmp_path / "f.dat"
    files["dat"].write_bytes(b"% Data file containing Event2D events.\n% Width 34\n% Height 34\n\x00\x08" + d.tobytes())
    return files


def _outcome(path: Path) -> str:
    """'error' for a RecordingError naming the file, else 'read:<n>'; any other exception fails the test."""
    try:
        a = _read(path)
    except RecordingError as exc:
        assert str(path) in str(exc), exc  # noqa: PT017 (either outcome is valid, so no pytest.raises)
        return "error"
    assert a.dtype == EVENT_DTYPE
    return f"read:{a.size}"


def test_damaged_files_error_cleanly(tmp_path: Path) -> None:
    files = _fixtures(tmp_path)
    for fmt, path in files.items():
        full = path.read_bytes()
        assert _outcome(path) == "read:3000", fmt
        for cut in (len(full) // 3 + 1, len(full) // 2 + 3, len(full) - 1):
            damaged = tmp_path / f"cut_{cut}_{path.name}"
            damaged.write_bytes(full[:cut])
            outcome = _outcome(damaged)
            if fmt == "aedat4" and cut == len(full) - 1:
                # Only the trailing file table (an index) is damaged: dv-processing still reads every packet.
                assert outcome in ("error", "read:3000"), outcome
            elif fmt in ("nmnist", "aedat2", "aedat3", "evt2", "dat", "npy", "aedat4"):
                # These can tell a partial record (or dv-processing its missing file table).
                assert outcome == "error", (fmt, cut, outcome)
            else:  # EVT 3.0 words are 2 bytes: an even cut is a clean shorter read, an odd one an error.
                odd = (cut - R.open_recording(path).metadata["data_offset"]) % 2
                assert (outcome == "error") == bool(odd), (fmt, cut, outcome)
        rng = np.random.default_rng(len(full))
        for trial in range(4):
            data = bytearray(full)
            start = 160 if fmt != "npy" else 128
            for pos in rng.integers(start, len(full), 8):
                data[pos] ^= 0xFF
            damaged = tmp_path / f"flip_{trial}_{path.name}"
            damaged.write_bytes(bytes(data))
            _outcome(damaged)  # must not crash or hang: an error naming the file, or a clean read


def test_error_messages_name_offset(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    path.write_bytes(b"\x00" * 12)
    with pytest.raises(RecordingError, match=r"t\.bin at byte 10: truncated"):
        _read(path)
    bad = tmp_path / "b.raw"
    bad.write_bytes(b"% evt 3.0\n" + _evt3_words((0x8, 1), (0x9, 0)))
    with pytest.raises(RecordingError, match=r"b\.raw at byte 12: undefined word"):
        _read(bad)
    outside = tmp_path / "o.raw"
    outside.write_bytes(b"% evt 3.0\n% geometry 10x10\n" + _evt3_words((0x8, 1), (0x0, 3), (0x2, 10)))
    with pytest.raises(RecordingError, match=r"o\.raw at byte 31: address outside"):
        _read(outside)
