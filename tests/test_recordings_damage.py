"""Damaged and hostile files, one case each: every one a one-line ``RecordingError`` naming the file (and the
byte offset), never a raw traceback or an allocation of what a damaged header declares. ``convert``'s
errors name the file and point at what its command line can do. The random mutants are in test_fuzz.py."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

import recordings as R
from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, make_events
from recordings.formats import aedat4


def _events(n: int, w: int = 34, h: int = 34) -> np.ndarray:
    rng = np.random.default_rng(n)
    t = np.sort(rng.integers(0, 100_000, n))
    return make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def _one_line_error(path: Path, where: str = r" at byte \d+") -> str:
    """The message of the ``RecordingError`` that reading ``path`` raises; it names the file (and ``where``)."""
    with pytest.raises(RecordingError) as caught:
        R.open_recording(path).read_all()
    text = str(caught.value)
    assert "\n" not in text, text
    assert re.match(re.escape(str(path)) + where + ": ", text), text
    return text


# ------------------------------------------------------------------------------------------------ npy


def _npy_with_header(path: Path, header: bytes, data: bytes = b"") -> Path:
    """A version 1.0 ``.npy`` file with this header dict (padded as numpy pads it)."""
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data)
    return path


def test_an_npy_header_cut_short_is_an_error_at_the_header_not_a_tokenizer_traceback(tmp_path: Path) -> None:
    good = tmp_path / "good.npy"
    R.write_recording(good, _events(5), None, None)
    raw = good.read_bytes()
    size = struct.unpack_from("<H", raw, 8)[0]
    header = raw[10 : 10 + size]
    # numpy raises tokenize.TokenError for this one (an open bracket at the end of the text)
    cut = tmp_path / "cut.npy"
    cut.write_bytes(raw[:10] + header[:50].ljust(size - 1) + b"\n" + raw[10 + size :])
    assert "damaged .npy header" in _one_line_error(cut, " at byte 10")
    # the file itself ending inside the header
    short = tmp_path / "short.npy"
    short.write_bytes(raw[:40])
    assert "truncated inside the header" in _one_line_error(short, " at byte 40")


def _dict(descr: str, shape: str = "(3,)", order: str = "False") -> bytes:
    return f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}".encode()


_FIELDS = "('x', '<u2'), ('y', '<u2'), ('p', '|u1')"


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (_dict(f"[('t', '<i8', (2,)), {_FIELDS}]"), "field t has dtype"),
        (_dict(f"[('t', '<i8'), {_FIELDS}]", shape="(1152921504606846976,)"), "truncated: the header promises"),
        (_dict("[('t', '<i8'), ('x', '<u2'), ('y', '<u2'), ('p', '|O')]"), "Python objects"),
        (_dict("[('t', '<i8'), ('x', 7)]"), "descr"),
        (_dict("'<i8'", shape="(-3,)"), "shape"),
        (_dict("'<i8'", order="0"), "fortran_order"),
        (b"{'descr': '<i8', 'shape': (3,), }", "expected the keys"),
        (_dict("'<i8'"), "not an event array"),
        (b"(" * 5000, "not a Python dict literal"),
        (_dict("__import__('os').getcwd()"), "not a Python dict literal"),
    ],
    ids=["subarray-field", "2**60-records", "object-field", "bad-descr", "negative-shape", "fortran-order",
         "missing-key", "not-records", "deep-nesting", "a-call"],
)  # fmt: skip
def test_an_npy_header_that_describes_no_event_array_is_a_one_line_error(
    tmp_path: Path, header: bytes, says: str
) -> None:
    path = _npy_with_header(tmp_path / "h.npy", header, bytes(48))
    assert says in _one_line_error(path)


def test_an_npy_preamble_that_lies_is_an_error_at_its_byte(tmp_path: Path) -> None:
    version = tmp_path / "version.npy"
    version.write_bytes(b"\x93NUMPY\x09\x00" + bytes(100))
    assert "version 9.0" in _one_line_error(version, " at byte 6")
    huge = tmp_path / "huge.npy"
    huge.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + bytes(100))
    assert "header length 2147483648" in _one_line_error(huge, " at byte 8")


def test_event_dtype_npy_gets_the_range_checks_of_every_reader(tmp_path: Path) -> None:
    """A ``p = 246`` used to read as ON in ``info`` and fail later in ``convert`` without naming the file."""
    events = _events(100)
    events["p"][37] = 246
    path = tmp_path / "p.npy"
    np.save(path, events)
    offset = R.open_recording(path).metadata["data_offset"]
    text = _one_line_error(path, f" at byte {offset + 37 * EVENT_DTYPE.itemsize}")
    assert "event 37 has p = 246, outside [0, 1]" in text
    with pytest.raises(RecordingError, match=r"p\.npy at byte"):
        R.info(path)
    with pytest.raises(RecordingError, match=r"p\.npy at byte"):
        R.convert(path, tmp_path / "out.aedat4")
    assert not (tmp_path / "out.aedat4").exists()
    # batch by batch, the batches before the bad event still arrive
    batches = R.open_recording(path).batches(10)
    assert sum(next(batches).size for _ in range(3)) == 30
    with pytest.raises(RecordingError, match="event 37 has p = 246"):
        list(batches)
    # a converted dtype is checked the same way, with the offset of its own records
    other = np.zeros(4, dtype=[("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", "<i4")])
    other["y"][2] = 70000
    np.save(tmp_path / "o.npy", other)
    data = R.open_recording(tmp_path / "o.npy").metadata["data_offset"]
    assert "event 2 has y = 70000" in _one_line_error(tmp_path / "o.npy", f" at byte {data + 2 * 20}")


def test_npy_files_read_as_before(tmp_path: Path) -> None:
    events = _events(3000)
    path = tmp_path / "e.npy"
    np.save(path, events)
    assert R.open_recording(path).read_all().tobytes() == events.tobytes()
    parts = list(R.open_recording(path).batches(1000))
    assert [p.size for p in parts] == [1000, 1000, 1000]
    assert all(p.flags.writeable and p.dtype == EVENT_DTYPE for p in parts)
    np.save(tmp_path / "none.npy", events[:0])
    assert R.open_recording(tmp_path / "none.npy").read_all().size == 0
    v3 = tmp_path / "v3.npy"
    with v3.open("wb") as f:
        np.lib.format.write_array(f, events[:5], version=(3, 0))
    assert R.open_recording(v3).read_all().tobytes() == events[:5].tobytes()


# ---------------------------------------------------------------------------------------------- AEDAT 4


def _xxh32(data: bytes) -> int:
    """xxHash32 (seed 0) of fewer than 16 bytes: what an LZ4 frame's header checksum is made from."""
    p1, p2, p3, p4, p5, m = 2654435761, 2246822519, 3266489917, 668265263, 374761393, 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & m

    assert len(data) < 16
    h, i = (p5 + len(data)) & m, 0
    while i + 4 <= len(data):
        h = rotl((h + struct.unpack_from("<I", data, i)[0] * p3) & m, 17) * p4 & m
        i += 4
    for b in data[i:]:
        h = rotl((h + b * p5) & m, 11) * p1 & m
    h ^= h >> 15
    h = h * p2 & m
    h ^= h >> 13
    h = h * p3 & m
    return h ^ (h >> 16)


def lz4_frame_declaring(payload: bytes, size: int) -> bytes:
    """An LZ4 frame of ``payload`` whose header declares ``size`` bytes of content (checksum made valid)."""
    import lz4.frame

    frame = bytearray(lz4.frame.compress(payload, store_size=True))
    assert frame[4] & 0x08  # the content-size flag: 8 bytes of size after FLG and BD
    frame[6:14] = struct.pack("<Q", size)
    frame[14] = (_xxh32(bytes(frame[4:14])) >> 8) & 0xFF
    return bytes(frame)


def with_first_packet(path: Path, out: Path, payload: bytes) -> int:
    """Copy the AEDAT 4.0 file ``path`` to ``out`` with its first packet's content replaced by ``payload``
    (the space left is taken by a packet of another stream, so the data table stays where it was); returns
    the packet's byte offset."""
    data = path.read_bytes()
    _, _, _, first = aedat4._header(path, data)
    sid, n = struct.unpack_from("<ii", data, first)
    filler = n - len(payload) - 8
    assert filler > 0, "the replacement must be smaller than the packet"
    packet = struct.pack("<ii", sid, len(payload)) + payload + struct.pack("<ii", 0x7FFF, filler) + bytes(filler)
    out.write_bytes(data[:first] + packet + data[first + 8 + n :])
    return first


def _dv_file(path: Path, events: np.ndarray, compression: str) -> Path:
    import dv_processing as dv

    config = dv.io.MonoCameraWriter.Config("cam")
    config.addEventStream((34, 34))
    config.compression = getattr(dv.CompressionType, compression)
    writer = dv.io.MonoCameraWriter(str(path), config)
    fields = (events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["p"].astype(bool).tolist())
    writer.writeEventPacket(dv.EventPacket(dv.EventPacket.EventVector(list(map(dv.Event, *fields)))))
    del writer
    return path


def test_an_lz4_frame_declaring_two_to_the_fifty_bytes_is_refused_at_its_packet(tmp_path: Path) -> None:
    """The declared content size is never allocated: it used to end in a bare ``MemoryError``."""
    src = _dv_file(tmp_path / "src.aedat4", _events(400), "LZ4")
    bad = tmp_path / "declares.aedat4"
    first = with_first_packet(src, bad, lz4_frame_declaring(bytes(64), 1 << 50))
    text = _one_line_error(bad, f" at byte {first}")
    assert "corrupt event packet" in text


def test_a_packet_that_inflates_past_the_ratio_bound_is_refused(tmp_path: Path) -> None:
    import zstandard

    src = _dv_file(tmp_path / "src.aedat4", _events(3000), "ZSTD")
    bomb = zstandard.ZstdCompressor().compress(bytes(64 << 20))  # 64 MiB of zeros in a few KiB
    bad = tmp_path / "bomb.aedat4"
    first = with_first_packet(src, bad, bomb)
    limit = max(aedat4.MAX_RATIO * len(bomb), aedat4.MIN_LIMIT)
    assert limit < 64 << 20
    text = _one_line_error(bad, f" at byte {first}")
    assert f"decompresses to more than {limit} bytes" in text


def test_a_damaged_zstd_packet_is_a_recording_error(tmp_path: Path) -> None:
    src = _dv_file(tmp_path / "src.aedat4", _events(3000), "ZSTD")
    assert R.open_recording(src).read_all().size == 3000
    bad = tmp_path / "zstd.aedat4"
    first = with_first_packet(src, bad, b"\x28\xb5\x2f\xfd" + bytes(range(40)))  # zstd magic, then junk
    assert "corrupt event packet" in _one_line_error(bad, f" at byte {first}")


# ----------------------------------------------------------------------------------- N-MNIST and convert


def test_an_empty_nmnist_bin_is_an_error_naming_it_not_a_sample_without_events(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert "empty file" in _one_line_error(empty, " at byte 0")
    (tmp_path / "ds" / "3").mkdir(parents=True)
    (tmp_path / "ds" / "3" / "00001.bin").write_bytes(b"")
    with pytest.raises(RecordingError, match=r"00001\.bin at byte 0: empty file"):
        R.NMnistDataset(tmp_path / "ds").load(0)
    # and what would read as an error is never written
    with pytest.raises(ValueError, match="at least one event"):
        R.write_recording(tmp_path / "none.bin", np.zeros(0, EVENT_DTYPE), 34, 34)
    assert not (tmp_path / "none.bin").exists()


def test_convert_errors_name_the_file_and_what_its_command_line_can_do(tmp_path: Path) -> None:
    wide = tmp_path / "wide.npy"
    R.write_recording(wide, _events(50, 300, 200), None, None)
    with pytest.raises(RecordingError) as caught:
        R.convert(wide, tmp_path / "out.bin")
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'out.bin'}: cannot hold the events of {wide}"), text
    assert "write .npy, .aedat4 or .aedat3" in text
    for words in ("crop", "downsample", "format=", "NMnistDataset"):
        assert words not in text
    with pytest.raises(RecordingError, match=r"out\.txt: the output format follows the name's suffix: end it in "):
        R.convert(wide, tmp_path / "out.txt")
    with pytest.raises(RecordingError, match=r"wide\.npy: convert reads it and would write it"):
        R.convert(wide, wide)
    with pytest.raises(RecordingError, match="is a folder, not an event file: name one file inside it") as folder:
        R.convert(tmp_path, tmp_path / "out.npy")
    assert "NMnistDataset" not in str(folder.value)
    late = tmp_path / "late.npy"
    events = _events(5)
    events["t"] += 1 << 24
    R.write_recording(late, events, None, None)
    with pytest.raises(RecordingError, match="23-bit.*write .npy or .aedat4"):
        R.convert(late, tmp_path / "late.bin")
    assert not list(tmp_path.glob("*.bin"))
    assert not list(tmp_path.glob("*.part"))
