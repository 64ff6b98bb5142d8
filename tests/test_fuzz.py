"""Fuzzers that stay: seeded mutants of every reader's files, of wire messages and of message logs.

Mutants are truncations, bit flips, inserted and deleted runs and huge declared sizes (a 4- or 8-byte word
overwritten with 2**31 - 1, 2**50 ...), applied to small files the tests write themselves and, when
``SPIKESTREAM_DATA`` is there, to the real recordings. The invariant: a clean read, or a
``SpikestreamError`` whose message is one line naming the file and the byte offset; in bounded time (a
Hypothesis deadline per mutant) and bounded memory (a sample of mutants, and the hostile declared sizes,
read in a subprocess under an address-space limit, where a ``MemoryError`` or any other exception fails).

The default run is brief and deterministic (``derandomize``); ``pytest -m fuzz`` runs the long version
with fresh random mutants (Hypothesis prints the seed and the shrunk mutant of a failure).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recordings as R
from pipeline import wire
from pipeline.errors import RecordingError, SpikestreamError, WireFormatError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE, SPIKE_DTYPE, make_events, prediction_dtype
from pipeline.message import (
    Message,
    control_message,
    events_message,
    labels_message,
    metrics_message,
    predictions_message,
    spikes_message,
)
from recordings.formats.aedat3 import encode_aedat3
from recordings.messages import MessageLogWriter, read_messages

REPO = Path(__file__).resolve().parent.parent
#: Mutants per case: in the default suite, and under ``-m fuzz``.
BRIEF, LONG = 12, 400
#: Mutants per real recording (each is megabytes) in the default suite.
BRIEF_REAL = 2
#: The address-space limit of the memory check, and the random mutants per file it reads.
LIMIT_AS = 3 << 29  # 1.5 GiB
SUBPROCESS_MUTANTS = 12
#: Values that a damaged length or size word may hold.
HUGE = (0x7FFFFFFF, 0xFFFFFFFF, 1 << 31, 1 << 40, 1 << 50, (1 << 63) - 1)
AT_BYTE = re.compile(r"\bat byte (offset )?\d+")


# -------------------------------------------------------------------------------------------- fixtures


def _events(n: int, w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, 300_000, n)), rng.integers(0, w, n), rng.integers(0, h, n),
                       rng.integers(0, 2, n))  # fmt: skip


def _rows(ev: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in ev]


def _write_fixtures(folder: Path) -> dict[str, Path]:
    """One small file per format (and per AEDAT 4.0 compression), each holding the same 300 events."""
    import dv_processing as dv

    ev = _events(300, 34, 34, 1)
    files: dict[str, Path] = {}
    for name, fmt in (("nmnist", "f.bin"), ("aedat3", "f.aedat3"), ("npy", "f.npy"), ("aedat4-lz4", "f.aedat4")):
        files[name] = folder / fmt
        R.write_recording(files[name], ev, 34, 34)
    for compression in ("NONE", "ZSTD"):
        path = folder / f"{compression.lower()}.aedat4"
        config = dv.io.MonoCameraWriter.Config("cam")
        config.addEventStream((34, 34))
        config.compression = getattr(dv.CompressionType, compression)
        writer = dv.io.MonoCameraWriter(str(path), config)
        for part in np.array_split(ev, 3):
            fields = (part["t"].tolist(), part["x"].tolist(), part["y"].tolist(), part["p"].astype(bool).tolist())
            writer.writeEventPacket(dv.EventPacket(dv.EventPacket.EventVector(list(map(dv.Event, *fields)))))
        del writer
        files[f"aedat4-{compression.lower()}"] = path
    files["aedat3-mixed"] = folder / "mixed.aedat3"
    files["aedat3-mixed"].write_bytes(encode_aedat3(ev, 34, 34, packet_events=64, extra_packets=True))
    other = np.zeros(300, dtype=[("t", "<u4"), ("x", "<i4"), ("y", "<i2"), ("p", "?")])
    for name in ("t", "x", "y", "p"):
        other[name] = ev[name]
    files["npy-converted"] = folder / "other.npy"
    np.save(files["npy-converted"], other)
    rows = _rows(ev)
    head = b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n"  # y is stored bottom-up
    files["aedat2"] = folder / "f.aedat"
    files["aedat2"].write_bytes(head + b"".join(struct.pack(">II", ((179 - y) << 22) | (x << 12) | (p << 11), t)
                                                for t, x, y, p in rows))  # fmt: skip
    words, high = [], -1
    for t, x, y, p in rows:
        if t >> 12 != high:
            high = t >> 12
            words += [(0x8 << 12) | high]
        words += [(0x6 << 12) | (t & 0xFFF), y, (0x2 << 12) | (p << 11) | x]
    files["evt3"] = folder / "f3.raw"
    files["evt3"].write_bytes(b"% evt 3.0\n% geometry 34x34\n% end\n" + np.array(words, "<u2").tobytes())
    w2 = [(8 << 28) | (t >> 6) if k == 0 else (p << 28) | ((t & 63) << 22) | (x << 11) | y
          for t, x, y, p in rows for k in range(2)]  # fmt: skip
    files["evt2"] = folder / "f2.raw"
    files["evt2"].write_bytes(b"% evt 2.0\n% geometry 34x34\n% end\n" + np.array(w2, "<u4").tobytes())
    d = np.array([[t, (p << 28) | (y << 14) | x] for t, x, y, p in rows], dtype="<u4")
    files["dat"] = folder / "f.dat"
    files["dat"].write_bytes(b"% Data file containing Event2D events.\n% Width 34\n% Height 34\n\x00\x08" + d.tobytes())
    for name, path in files.items():  # the clean files read whole (and the kernels are compiled before timing)
        assert _rows(R.open_recording(path).read_all()) == rows, name
    return files


def _messages() -> list[Message]:
    rng = np.random.default_rng(3)
    spikes = np.zeros(5, SPIKE_DTYPE)
    spikes["t"], spikes["c"] = np.arange(5), rng.integers(0, 8, 5)
    labels = np.zeros(2, LABEL_DTYPE)
    labels["t"], labels["label"] = [0, 100], [3, 7]
    predictions = np.zeros(3, prediction_dtype(10))
    predictions["scores"] = rng.random((3, 10))
    out = [
        events_message(_events(20, 34, 34, 2), 34, 34),
        spikes_message(spikes, 8, 8),
        labels_message(labels),
        predictions_message(predictions),
        control_message("checkpoint", generation=3),
        metrics_message({"events": 20, "rates": [1.5, 2.5]}),
    ]
    return out


def _write_log(path: Path) -> Path:
    writer = MessageLogWriter(path)
    for msg in _messages():
        writer.write(msg)
    writer.close()
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The generated clean files: one per reader, and a message log."""
    folder = tmp_path_factory.mktemp("fuzz-fixtures")
    files = _write_fixtures(folder)
    files["log"] = _write_log(folder / "f.spklog")
    assert len(list(read_messages(files["log"]))) == len(_messages())
    return files


def _real_files() -> list[Path]:
    """The real recordings under ``SPIKESTREAM_DATA`` (a few N-MNIST samples of the folder)."""
    from pipeline.config import data_root

    root = data_root(REPO)
    if not root.is_dir():
        return []
    found = sorted(p for sub in ("aedat2", "aedat4", "evt") for p in (root / sub).glob("*") if p.is_file())
    return found + sorted((root / "nmnist" / "Test").glob("*/*.bin"))[:3]


# -------------------------------------------------------------------------------------------- mutants

#: One mutation: (operation, position, argument); positions are taken modulo the current length.
Mutation = tuple[str, int, Any]

_position = st.one_of(st.integers(0, 255), st.integers(0, 1 << 32))  # the headers first, then anywhere
mutations = st.lists(
    st.one_of(
        st.tuples(st.just("cut"), _position, st.none()),
        st.tuples(st.just("flip"), _position, st.integers(0, 7)),
        st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("delete"), _position, st.integers(1, 64)),
        st.tuples(st.just("huge"), _position, st.tuples(st.sampled_from(HUGE), st.sampled_from(("<", ">")))),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, ops: list[Mutation]) -> bytes:
    """``data`` with the mutations ``ops`` applied in order."""
    out = bytearray(data)
    for op, where, arg in ops:
        pos = where % (len(out) + 1)
        if op == "cut":
            del out[pos:]
        elif op == "flip" and pos < len(out):
            out[pos] ^= 1 << arg
        elif op == "insert":
            out[pos:pos] = arg
        elif op == "delete":
            del out[pos : pos + arg]
        elif op == "huge":
            value, order = arg
            word = struct.pack(order + ("I" if value < 1 << 32 else "Q"), value)
            out[pos : pos + len(word)] = word
    return bytes(out)


def random_mutants(data: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    """``n`` seeded mutants of ``data`` (for the subprocess, which Hypothesis does not drive)."""
    out = []
    for _ in range(n):
        ops: list[Mutation] = []
        for _ in range(int(rng.integers(1, 4))):
            op = str(rng.choice(["cut", "flip", "insert", "delete", "huge"]))
            where = int(rng.integers(0, 256)) if rng.random() < 0.5 else int(rng.integers(0, 1 << 32))
            arg: Any = {
                "cut": None,
                "flip": int(rng.integers(0, 8)),
                "insert": rng.integers(0, 256, int(rng.integers(1, 65)), dtype=np.uint8).tobytes(),
                "delete": int(rng.integers(1, 65)),
                "huge": (int(rng.choice(HUGE)), str(rng.choice(["<", ">"]))),
            }[op]
            ops.append((op, where, arg))
        out.append(mutate(data, ops))
    return out


# ------------------------------------------------------------------------------------------ invariants


def check_error(exc: SpikestreamError, path: Path | None) -> None:
    """The error's message is one line; for a file it names the file and a byte offset."""
    text = str(exc)
    assert text, type(exc)
    assert "\n" not in text, text
    if path is not None:
        assert text.startswith(str(path)), text
        assert AT_BYTE.search(text), text


def read_recording(path: Path) -> None:
    """A clean read of ``EVENT_DTYPE`` batches, or a ``RecordingError`` as ``check_error`` wants it."""
    try:
        for batch in R.open_recording(path).batches(4096):
            assert batch.dtype == EVENT_DTYPE
            assert batch.size <= 4096
    except RecordingError as exc:
        check_error(exc, path)


def read_log(path: Path) -> None:
    """Complete messages, then the end or a ``RecordingError`` (a cut-short log included) naming the file."""
    try:
        for msg in read_messages(path):
            assert isinstance(msg, Message)
    except RecordingError as exc:
        check_error(exc, path)


def _fuzz(examples: int, derandomize: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=examples,
        deadline=timedelta(seconds=2),  # a small file reads in milliseconds: seconds mean a runaway loop
        derandomize=derandomize,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def _fuzz_file(src: Path, out: Path, read: Callable[[Path], None], examples: int, derandomize: bool) -> None:
    data = src.read_bytes()

    @_fuzz(examples, derandomize)
    @given(ops=mutations)
    def prop(ops: list[Mutation]) -> None:
        out.write_bytes(mutate(data, ops))
        read(out)

    prop()


READERS = [
    "nmnist", "aedat2", "aedat3", "aedat3-mixed", "aedat4-lz4", "aedat4-zstd", "aedat4-none", "evt2", "evt3",
    "dat", "npy", "npy-converted",
]  # fmt: skip


@pytest.mark.parametrize("fmt", READERS)
def test_every_reader_reads_its_mutants_cleanly_or_says_where(written: dict[str, Path], tmp_path: Path,
                                                                fmt: str) -> None:  # fmt: skip
    src = written[fmt]
    _fuzz_file(src, tmp_path / f"mutant{src.suffix}", read_recording, BRIEF, derandomize=True)


def test_the_message_log_reader_reads_its_mutants_cleanly_or_says_where(written: dict[str, Path],
                                                                        tmp_path: Path) -> None:  # fmt: skip
    _fuzz_file(written["log"], tmp_path / "mutant.spklog", read_log, BRIEF * 3, derandomize=True)


@pytest.mark.fuzz
@pytest.mark.timeout(600)
@pytest.mark.parametrize("fmt", [*READERS, "log"])
def test_long_fuzz_of_every_reader_and_the_message_log(written: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    read = read_log if fmt == "log" else read_recording
    src = written[fmt]
    _fuzz_file(src, tmp_path / f"mutant{src.suffix}", read, LONG, derandomize=False)


def _real_params() -> list[object]:
    files = _real_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="real recordings not found (set SPIKESTREAM_DATA)"))]
    return [pytest.param(p, id=p.name) for p in files]


@pytest.mark.needs_data
@pytest.mark.parametrize("real", _real_params())
def test_mutants_of_the_real_recordings_read_cleanly_or_say_where(real: Path, tmp_path: Path) -> None:
    _fuzz_file(real, tmp_path / f"mutant{real.suffix}", read_recording, BRIEF_REAL, derandomize=True)


@pytest.mark.fuzz
@pytest.mark.timeout(600)
@pytest.mark.needs_data
@pytest.mark.parametrize("real", _real_params())
def test_long_fuzz_of_the_real_recordings(real: Path, tmp_path: Path) -> None:
    _fuzz_file(real, tmp_path / f"mutant{real.suffix}", read_recording, LONG // 10, derandomize=False)


# ------------------------------------------------------------------------------------------------ wire

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_field_values = st.one_of(_json, st.sampled_from(HUGE), st.integers(-(1 << 70), 1 << 70))


def _decode(frames: list[bytes]) -> None:
    """A ``Message`` whose data holds ``count`` records, or a one-line ``WireFormatError``."""
    try:
        msg = wire.decode(frames)
    except WireFormatError as exc:
        check_error(exc, None)
        return
    assert msg.data is None or msg.data.shape == (msg.count,)


def _wire_byte_mutants(examples: int, derandomize: bool) -> None:
    encoded = [[bytes(f) for f in wire.encode(m)] for m in _messages()]

    @_fuzz(examples, derandomize)
    @given(which=st.integers(0, len(encoded) - 1), frame=st.integers(0, 2), ops=mutations)
    def prop(which: int, frame: int, ops: list[Mutation]) -> None:
        frames = list(encoded[which])
        frames[frame] = mutate(frames[frame], ops)
        _decode(frames)

    prop()


def _wire_header_mutants(examples: int, derandomize: bool) -> None:
    encoded = [[bytes(f) for f in wire.encode(m)] for m in _messages()]
    keys = st.sampled_from([*wire.HEADER_FIELDS, "x"])

    @_fuzz(examples, derandomize)
    @given(which=st.integers(0, len(encoded) - 1), changes=st.dictionaries(keys, _field_values, max_size=3),
           payload=st.sampled_from(("keep", "empty", "short", "long")))  # fmt: skip
    def prop(which: int, changes: dict[str, object], payload: str) -> None:
        topic, header, data = encoded[which]
        fields = {**json.loads(header), **changes}
        data = {"keep": data, "empty": b"", "short": data[:-1], "long": data + b"\x00" * 16}[payload]
        _decode([topic, json.dumps(fields).encode(), data])

    prop()


def test_the_wire_decoder_refuses_mutated_messages_in_one_line() -> None:
    _wire_byte_mutants(BRIEF * 5, derandomize=True)
    _wire_header_mutants(BRIEF * 5, derandomize=True)


@pytest.mark.fuzz
@pytest.mark.timeout(600)
def test_long_fuzz_of_the_wire_decoder() -> None:
    _wire_byte_mutants(LONG * 5, derandomize=False)
    _wire_header_mutants(LONG * 5, derandomize=False)


# ----------------------------------------------------------------------------------------- memory bound


def _hostile(folder: Path, written: dict[str, Path]) -> list[tuple[str, Path, str]]:
    """Files that declare huge sizes where a reader might allocate what they declare: (kind, path, what the
    reader must say)."""
    from tests.test_recordings_damage import lz4_frame_declaring, with_first_packet

    out = []
    declares = folder / "declares.aedat4"
    with_first_packet(written["aedat4-lz4"], declares, lz4_frame_declaring(bytes(64), 3 << 30))
    out.append(("recording", declares, "corrupt event packet"))
    huge = folder / "huge.npy"
    with huge.open("wb") as f:  # 2**59 events declared, 300 present
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(EVENT_DTYPE),
                                                 "fortran_order": False, "shape": (1 << 59,)})  # fmt: skip
        f.write(_events(300, 34, 34, 1).tobytes())
    out.append(("recording", huge, "truncated"))
    log = folder / "declares.spklog"
    count = 10**9
    header = json.dumps({"v": 1, "kind": "events", "stream": "s", "seq": 1, "count": count}).encode()
    log.write_bytes(
        written["log"].read_bytes() + struct.pack("<IIQ", 6, len(header), count * 16) + b"events" + header + bytes(64)
    )
    out.append(("log", log, "ends inside the record at byte"))
    return out


def test_mutants_and_hostile_sizes_stay_within_an_address_space_limit(written: dict[str, Path],
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """A sample of every reader's mutants, each huge declared size at each word of the headers, and the
    hostile files of ``_hostile``, read in a subprocess limited to 1.5 GiB of address space."""
    rng = np.random.default_rng(22)
    # the clean files first: they load every kernel, so that the time of each later read is its own
    jobs = [("log" if name == "log" else "recording", path) for name, path in written.items()]
    clean = {str(path) for _, path in jobs}
    expected: dict[str, str] = {}
    for name in [*READERS, "log"]:
        data = written[name].read_bytes()
        kind = "log" if name == "log" else "recording"
        mutants = random_mutants(data, rng, SUBPROCESS_MUTANTS)
        for pos in range(0, min(len(data), 128), 4):  # every aligned word of the header region
            for value, order in ((1 << 50, "<"), (0x7FFFFFFF, "<" if pos % 8 else ">")):
                mutants.append(mutate(data, [("huge", pos, (value, order))]))
        for i, mutant in enumerate(mutants):
            path = tmp_path / f"{name}-{i}{written[name].suffix}"
            path.write_bytes(mutant)
            jobs.append((kind, path))
    for kind, path, says in _hostile(tmp_path, written):
        jobs.append((kind, path))
        expected[str(path)] = says
    encoded = [[bytes(f) for f in wire.encode(m)] for m in _messages()]
    for i, frames in enumerate(encoded):
        for j, mutant in enumerate(random_mutants(b"".join(frames), rng, 4)):
            cut = [mutant[: len(frames[0])], mutant[len(frames[0]) : len(frames[0]) + len(frames[1])],
                   mutant[len(frames[0]) + len(frames[1]) :]]  # fmt: skip
            path = tmp_path / f"wire-{i}-{j}.frames"
            path.write_bytes(b"".join(struct.pack("<I", len(f)) + f for f in cut))
            jobs.append(("wire", path))
    listing = tmp_path / "jobs.txt"
    listing.write_text("".join(f"{kind}\t{path}\n" for kind, path in jobs))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(REPO / "tests" / "fuzz_child.py"), str(LIMIT_AS), str(listing)],
        capture_output=True, text=True, timeout=100, env=env, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(results) == len(jobs), run.stderr[-3000:]
    for r in results:
        assert r["outcome"] != "crash", r
        if r["outcome"] == "error":
            text = r["message"]
            assert "\n" not in text, r
            if r["kind"] != "wire":
                assert text.startswith(r["path"]), r
                assert AT_BYTE.search(text), r
        if r["path"] in clean:
            assert r["outcome"].startswith("read"), r
        else:
            assert r["s"] < 2, r  # bounded time, per file
        if r["path"] in expected:
            assert r["outcome"] == "error", r
            assert expected[r["path"]] in r["message"], r
