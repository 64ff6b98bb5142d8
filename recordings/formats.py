"""Readers for the event-file formats, format detection, and the conventions every reader follows.

Every reader yields batches of ``pipeline.events.EVENT_DTYPE`` in file order: ``t`` in microseconds,
origin top-left, ``p`` 1 = ON. Decoding runs in the numba kernels of ``recordings.kernels`` over a
memory map of the file, in bounded chunks, so a large file never has to fit in memory twice.

Conventions and decisions (read these before changing a reader):

* **Detection** looks at the content: ``#!AER-DAT4.0`` / ``#!AER-DAT3.1`` / ``#!AER-DAT2.0`` magic lines,
  the numpy ``\\x93NUMPY`` magic, and Prophesee ``%`` header lines (``% evt 2.0``, ``% evt 3.0``,
  ``% format EVT3;...``; a ``%`` header without an EVT version is DAT). N-MNIST ``.bin`` files have no
  magic, so the suffix ``.bin`` selects them.
* **Header lines** (``#`` for AEDAT, ``%`` for Prophesee) must be printable ASCII; a "line" starting with
  the header character but holding binary bytes is data. (An AEDAT 2.0 DAVIS address can start with the
  byte ``#``; jAER's own reader would swallow it.)
* **AEDAT 2.0 coordinates.** jAER stores y with the origin at the bottom. We flip it, ``y = H-1-y_raw``,
  and keep ``x = x_raw`` for both DAVIS and DVS128. For DAVIS this is exactly the mapping of iniVation's
  own DV <-> jAER converter (aedat4to2: ``y_raw = H-1-y_dv``, ``x_raw = x_dv``), so a DAVIS recording read
  here matches what dv-processing gives for the same camera. jAER *displays* both chips mirrored in x
  (``W-1-x_raw``); since for DAVIS the DV image is that display mirrored back, applying the same relation
  to the DVS128 gives ``x = x_raw`` again. One rule for every chip, and the one dv-processing's top-left
  convention implies; readers who want jAER's on-screen orientation flip x themselves.
  DVS128 polarity is inverted in the raw address (raw 0 = ON); DAVIS bit 31 (APS/IMU) and bit 10
  (external input) words, and DVS128 bit 15 (special) words, are skipped but their timestamps still drive
  the wrap-around unwrap. Timestamps wrap at 2**32: a drop of more than 2**31 counts as one wrap.
* **EVT 3.0 TIME_LOW going backwards.** In the real Gen4.1 sample a TIME_LOW is sometimes followed by a
  smaller TIME_LOW under the same TIME_HIGH (for example 811 then 800, once per millisecond). The step is
  a few µs, far too small to be a lost TIME_HIGH (that would move time by 4096 µs), so it is not treated
  as a wrap. Timestamps are computed at face value, and an event whose timestamp would be earlier than the
  last emitted one is *clamped* to it, so every reader output is non-decreasing in time. In the sample no
  event falls between the larger and the smaller TIME_LOW, so the clamp changes nothing there; both the
  number of backward TIME_LOW words and of clamped events are reported in ``metadata`` after a full read.
* **Sensor size** comes from the header or the chip name; when the file does not say, it is ``None``
  (never a guessed default). Where it is known, an address outside it is a corrupt file.
* **Errors.** A truncated or corrupt file raises ``RecordingError`` naming the file and the byte offset.
  Formats made of fixed-size records without checksums (N-MNIST, AEDAT 2.0, DAT) cannot tell a flipped
  bit inside a timestamp from real data: such damage gives a clean read of wrong values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, copy_records
from recordings import kernels as K

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("nmnist", "aedat4", "aedat2", "aedat3", "evt2", "evt3", "dat", "npy")

_FORMAT_HELP = (
    "N-MNIST .bin (nmnist), AEDAT 4.0 (aedat4), AEDAT 3.1 (aedat3), AEDAT 2.0 (aedat2), "
    "Prophesee RAW EVT 2.0 (evt2) / EVT 3.0 (evt3), Prophesee DAT (dat), numpy .npy of events (npy)"
)

#: ``batch_size`` that asks a source for as few, large chunks as it can make (``Recording.read_all``).
WHOLE = 0

#: Decoded events per kernel call when the caller's batch is smaller (keeps per-call overhead low).
_MIN_CHUNK = 4096

#: Sensor sizes of the chips named in AEDAT 2.0 / 3.1 headers (lower-case substrings).
_CHIPS: tuple[tuple[str, int, int], ...] = (
    ("davis346", 346, 260),
    ("davis240", 240, 180),
    ("davis640", 640, 480),
    ("dvs128", 128, 128),
)

_KERNEL_ERRORS = {
    K.ERR_BAD_TYPE: "undefined word/event type (corrupt data)",
    K.ERR_BAD_ADDRESS: "address outside the sensor (corrupt data)",
    K.ERR_BAD_PACKET: "impossible packet header (corrupt or truncated data)",
}


def _fail(path: Path, offset: int | None, what: str) -> RecordingError:
    where = f" at byte {offset}" if offset is not None else ""
    return RecordingError(f"{path}{where}: {what}")


# --------------------------------------------------------------------------------------------- headers


@dataclass(frozen=True, kw_only=True)
class Header:
    """The text header of a file: its lines (without the leading marker and line end) and where data starts."""

    lines: tuple[str, ...]
    data_offset: int


_PRINTABLE = re.compile(rb"^[\x20-\x7e\t]*\r?\n?$")


def read_header(path: Path, marker: bytes, *, end_line: str | None = None, limit: int = 1 << 24) -> Header:
    """Read the leading lines of ``path`` that start with ``marker`` and are printable ASCII.

    Stops at the first line that does not start with ``marker``, at a line holding non-text bytes, or
    after a line equal to ``end_line`` (compared without marker, whitespace and case).
    """
    lines: list[str] = []
    offset = 0
    step = 1 << 16
    try:
        with path.open("rb") as f:
            buf = f.read(step)
            eof = len(buf) < step
            while offset < len(buf) or not eof:
                nl = buf.find(b"\n", offset)
                if nl < 0 and not eof and len(buf) < limit:
                    more = f.read(step)
                    eof = len(more) < step
                    buf += more
                    continue
                end = len(buf) if nl < 0 else nl + 1
                line = buf[offset:end]
                if not line.startswith(marker) or not _PRINTABLE.match(line):
                    break
                offset = end
                lines.append(line[len(marker) :].decode("ascii").rstrip("\r\n"))
                if nl < 0 or (end_line is not None and lines[-1].strip().lower() == end_line):
                    break
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from exc
    return Header(lines=tuple(lines), data_offset=offset)


def _chip_size(text: str) -> tuple[int | None, int | None]:
    low = text.lower()
    for name, w, h in _CHIPS:
        if name in low:
            return w, h
    return None, None


# ------------------------------------------------------------------------------------------- detection


def detect_format(path: str | Path) -> str:
    """The format of the event file at ``path``, decided by its content (the suffix only breaks ties).

    Raises ``RecordingError`` for a missing file, a directory, or an unknown format (listing the
    supported ones).
    """
    path = Path(path)
    if path.is_dir():
        raise RecordingError(f"{path}: is a folder; use NMnistDataset for an N-MNIST dataset folder")
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from exc
    if head.startswith(b"SPKLOG\x00"):
        raise RecordingError(
            f"{path}: a spikestream message log (written by a 'record' sink), not an event file: play it with "
            'type = "playback"; `spikestream info` describes it'
        )
    if head.startswith(b"#!AER-DAT4.0"):
        return "aedat4"
    if head.startswith(b"#!AER-DAT3.1"):
        return "aedat3"
    if head.startswith(b"#!AER-DAT2.0"):
        return "aedat2"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"%"):
        header = read_header(path, b"%", end_line="end")
        version = _evt_version(header)
        if version == 2:
            return "evt2"
        if version == 3:
            return "evt3"
        # A '%' first byte alone proves nothing (an N-MNIST record may start with x = 37): DAT needs at least
        # one complete text header line, and .bin keeps its N-MNIST meaning.
        if path.suffix.lower() == ".raw" or (version is not None):
            raise RecordingError(
                f"{path}: Prophesee RAW header without a supported EVT version (EVT 2.0 and 3.0 are supported)"
            )
        if header.lines and path.suffix.lower() != ".bin":
            return "dat"
    if path.suffix.lower() == ".bin":
        return "nmnist"
    if not head:
        raise RecordingError(f"{path}: empty file (0 bytes)")
    raise RecordingError(f"{path}: unknown event file format; supported: {_FORMAT_HELP}")


def _evt_version(header: Header) -> int | None:
    for line in header.lines:
        low = line.strip().lower()
        m = re.match(r"evt\s+(\d)(?:\.\d)?$", low)
        if m:
            return int(m.group(1))
        m = re.match(r"format\s+evt(\d)", low)
        if m:
            return int(m.group(1))
    return None


def _prophesee_size(header: Header) -> tuple[int | None, int | None]:
    """Width and height from ``% geometry WxH``, ``% format ...;width=..;height=..`` or DAT
    ``% Width``/``% Height`` lines; ``(None, None)`` when the header does not say."""
    width = height = None
    for line in header.lines:
        low = line.strip().lower()
        m = re.match(r"geometry\s+(\d+)\s*x\s*(\d+)", low)
        if m:
            return int(m.group(1)), int(m.group(2))
        if low.startswith("format"):
            w = re.search(r"width=(\d+)", low)
            h = re.search(r"height=(\d+)", low)
            if w and h:
                return int(w.group(1)), int(h.group(1))
        m = re.match(r"(width|height)\s+(\d+)$", low)
        if m:
            if m.group(1) == "width":
                width = int(m.group(2))
            else:
                height = int(m.group(2))
    if width is not None and height is not None:
        return width, height
    return None, None


# ------------------------------------------------------------------------------------------- recording


@dataclass(kw_only=True)
class Recording:
    """An open event file. ``batches`` streams ``EVENT_DTYPE`` arrays in file order; ``read_all`` reads it all.

    ``metadata`` holds what the header says (chip, camera, header lines ...) and, after a complete pass
    over the events, what the decoder counted (for example EVT 3.0 clamped timestamps).
    """

    path: Path
    format: str
    width: int | None
    height: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
    _source: Callable[[int], Iterator[np.ndarray]] = field(repr=False, default=lambda n: iter(()))

    def batches(self, batch_size: int = 65536) -> Iterator[np.ndarray]:
        """Batches of at most ``batch_size`` events (all but the last exactly ``batch_size``)."""
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return rebatch(self._source(int(batch_size)), int(batch_size))

    def read_all(self) -> np.ndarray:
        """Every event of the file as one ``EVENT_DTYPE`` array."""
        return concat(list(self._source(WHOLE)))


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate event batches by their bytes (numpy's field-wise path is slow for records)."""
    if not parts:
        return np.zeros(0, dtype=EVENT_DTYPE)
    if len(parts) == 1:
        return parts[0]
    raw = np.concatenate([np.ascontiguousarray(a).view(np.uint8) for a in parts])
    return raw.view(EVENT_DTYPE)


def rebatch(chunks: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Regroup a stream of event arrays into arrays of exactly ``batch_size`` (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for chunk in chunks:
        while chunk.size:
            if not pending and chunk.size >= batch_size:
                yield chunk[:batch_size]
                chunk = chunk[batch_size:]
                continue
            take = min(batch_size - have, chunk.size)
            pending.append(chunk[:take])
            have += take
            chunk = chunk[take:]
            if have == batch_size:
                yield concat(pending)
                pending, have = [], 0
    if have:
        yield concat(pending)


def _memmap(path: Path, offset: int) -> np.ndarray:
    """The bytes of ``path`` from ``offset`` on (a read-only memory map; an empty array for no bytes)."""
    size = path.stat().st_size
    if size <= offset:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=offset)


def _kernel_stream(
    path: Path,
    data_offset: int,
    record: int,
    call: Callable[..., tuple[int, int, int, int]],
    state: np.ndarray,
    batch_size: int,
    *,
    per_record: int = 1,
    on_done: Callable[[np.ndarray], None] | None = None,
) -> Iterator[np.ndarray]:
    """Drive a resumable kernel over the data of ``path`` and yield the decoded chunks.

    ``record`` is the size in bytes of one record; a trailing partial record is a truncated file.
    ``call(buf, pos, stop, out, state)`` runs the kernel. With ``batch_size == WHOLE`` and at most one
    event per record (``per_record``), the whole file is decoded into one array allocated once.
    """
    buf = _memmap(path, data_offset)
    stop = buf.size - buf.size % record
    if buf.size % record:
        raise _fail(
            path,
            data_offset + stop,
            f"truncated: {buf.size % record} trailing byte(s), not a whole {record}-byte record",
        )
    pos = 0
    # WHOLE: with one event per record at most, the record count is an exact bound; otherwise (EVT 3.0
    # vectors) one event per word is the usual density and a denser file simply takes more than one chunk.
    cap = max(stop // record, 1) + per_record if batch_size == WHOLE else max(batch_size, _MIN_CHUNK)
    while pos < stop:
        out = np.empty(cap, dtype=EVENT_DTYPE)
        n, pos, err, err_pos = call(buf, pos, stop, out, state)
        if n:
            yield out[:n]
        if err:
            raise _fail(path, data_offset + err_pos, _KERNEL_ERRORS[err])
    if on_done is not None:
        on_done(state)


# ------------------------------------------------------------------------------------------ N-MNIST


def open_nmnist(path: Path) -> Recording:
    """An N-MNIST (Orchard 40-bit ATIS) ``.bin`` file; sensor 34x34."""

    def source(batch_size: int) -> Iterator[np.ndarray]:
        state = np.zeros(1, dtype=np.int64)
        return _kernel_stream(path, 0, 5, K.nmnist_decode, state, batch_size)

    size = K.NMNIST_SIZE
    return Recording(
        path=path, format="nmnist", width=size, height=size, metadata={"sensor": "ATIS 34x34"}, _source=source
    )


def read_nmnist_bytes(path: Path, raw: bytes) -> np.ndarray:
    """Decode the complete contents of an N-MNIST file in one call (the fast path of the dataset)."""
    if len(raw) % 5:
        stop = len(raw) - len(raw) % 5
        raise _fail(path, stop, f"truncated: {len(raw) % 5} trailing byte(s), not a whole 5-byte record")
    buf = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty(len(raw) // 5, dtype=EVENT_DTYPE)
    state = np.zeros(1, dtype=np.int64)
    n, _, err, err_pos = K.nmnist_decode(buf, 0, buf.size, out, state)
    if err:
        raise _fail(path, err_pos, _KERNEL_ERRORS[err])
    return out[:n] if n < out.size else out


# ----------------------------------------------------------------------------------------- AEDAT 2.0


def open_aedat2(path: Path) -> Recording:
    """A jAER AEDAT 2.0 file (DAVIS or DVS128 address layout, chosen from the ``AEChip`` header line)."""
    header = read_header(path, b"#")
    chip = None
    for line in header.lines:
        m = re.match(r"\s*AEChip:\s*(\S+)", line)
        if m:
            chip = m.group(1)
    width, height = _chip_size(chip) if chip else (None, None)
    if chip is None:
        layout = _guess_aedat2_layout(path, header.data_offset)
        if layout == K.LAYOUT_DVS128:
            width, height = 128, 128
    elif "dvs128" in chip.lower():
        layout = K.LAYOUT_DVS128
    else:
        layout = K.LAYOUT_DAVIS
        if width is None:
            log.warning("%s: unknown chip %s: sensor size unknown, y left bottom-up as stored", path, chip)
    name = "dvs128" if layout == K.LAYOUT_DVS128 else "davis"
    meta = {"chip": chip, "layout": name, "header_lines": len(header.lines), "data_offset": header.data_offset}
    w = width or 0
    h = height or 0

    def source(batch_size: int) -> Iterator[np.ndarray]:
        state = np.array([-1, 0], dtype=np.int64)

        def call(buf, pos, stop, out, st):  # type: ignore[no-untyped-def]
            return K.aedat2_decode(buf, pos, stop, layout, w, h, out, st)

        return _kernel_stream(path, header.data_offset, 8, call, state, batch_size)

    return Recording(path=path, format="aedat2", width=width, height=height, metadata=meta, _source=source)


def _guess_aedat2_layout(path: Path, data_offset: int) -> int:
    """No ``AEChip`` line: a DVS128 when every address fits in 16 bits (15 address bits + special)."""
    buf = _memmap(path, data_offset)
    n = buf.size // 8
    if n == 0:
        return K.LAYOUT_DVS128
    words = buf[: n * 8].view(">u4").reshape(n, 2)
    wide = int(np.count_nonzero(words[:, 0] >= (1 << 16)))
    if wide == 0:
        log.info("%s: no AEChip line; addresses fit 15 bits, decoding as DVS128", path)
        return K.LAYOUT_DVS128
    if wide * 100 < n:
        # A DAVIS stream has y in the high bits of nearly every address; a handful of wide words in a
        # DVS128 stream are damage, which the decoder then reports with its offset (the DAVIS layout
        # would quietly turn the whole file into other events)
        log.warning("%s: no AEChip line; %d of %d addresses are wider than 16 bits: decoding as DVS128", path, wide, n)
        return K.LAYOUT_DVS128
    log.warning("%s: no AEChip line and addresses wider than 16 bits: decoding as DAVIS, size unknown", path)
    return K.LAYOUT_DAVIS


# ----------------------------------------------------------------------------------------- AEDAT 3.1

AEDAT3_PACKET_HEADER = np.dtype(
    [
        ("eventType", "<i2"),
        ("eventSource", "<i2"),
        ("eventSize", "<i4"),
        ("eventTSOffset", "<i4"),
        ("eventTSOverflow", "<i4"),
        ("eventCapacity", "<i4"),
        ("eventNumber", "<i4"),
        ("eventValid", "<i4"),
    ]
)
AEDAT3_POLARITY_EVENT = 1


def open_aedat3(path: Path) -> Recording:
    """An AEDAT 3.1 file: polarity-event packets are decoded, every other packet type is skipped."""
    header = read_header(path, b"#", end_line="!end-header")
    if not header.lines or header.lines[-1].strip().lower() != "!end-header":
        raise _fail(path, header.data_offset, "AEDAT 3.1 header without '#!END-HEADER' line (truncated?)")
    width = height = None
    source_name = None
    for line in header.lines:
        m = re.match(r"\s*Source\s+\d+:\s*(.+)$", line)
        if m:
            source_name = m.group(1).strip()
            width, height = _chip_size(source_name)
        m = re.match(r"\s*Sensor-Size:\s*(\d+)\s*x\s*(\d+)", line)
        if m:
            width, height = int(m.group(1)), int(m.group(2))
    meta = {"source": source_name, "data_offset": header.data_offset}
    hsize = AEDAT3_PACKET_HEADER.itemsize

    def source(batch_size: int) -> Iterator[np.ndarray]:
        buf = _memmap(path, header.data_offset)
        pos = 0
        skipped: dict[int, int] = {}
        while pos < buf.size:
            if pos + hsize > buf.size:
                raise _fail(path, header.data_offset + pos, "truncated packet header")
            ph = buf[pos : pos + hsize].view(AEDAT3_PACKET_HEADER)[0]
            etype, esize = int(ph["eventType"]), int(ph["eventSize"])
            cap, number = int(ph["eventCapacity"]), int(ph["eventNumber"])
            if esize <= 0 or cap < 0 or number < 0 or number > cap or etype < 0:
                raise _fail(path, header.data_offset + pos, _KERNEL_ERRORS[K.ERR_BAD_PACKET])
            end = pos + hsize + esize * cap
            if end > buf.size:
                raise _fail(path, header.data_offset + pos, f"truncated packet: needs {esize * cap} payload bytes")
            if etype == AEDAT3_POLARITY_EVENT:
                if esize < 8:
                    raise _fail(path, header.data_offset + pos, f"polarity event size {esize} < 8")
                out = np.empty(number, dtype=EVENT_DTYPE)
                n = K.aedat3_polarity_decode(
                    buf, pos + hsize, number, esize, int(ph["eventTSOverflow"]),
                    out,
                )  # fmt: skip
                if width is not None and n and (out["x"][:n].max() >= width or out["y"][:n].max() >= height):
                    raise _fail(path, header.data_offset + pos, _KERNEL_ERRORS[K.ERR_BAD_ADDRESS])
                if n:
                    yield out[:n]
            else:
                skipped[etype] = skipped.get(etype, 0) + 1
            pos = end
        if skipped:
            log.info("%s: skipped packets of event types %s (only polarity events are read)", path, skipped)
            meta["skipped_packets"] = {str(k): v for k, v in sorted(skipped.items())}

    return Recording(path=path, format="aedat3", width=width, height=height, metadata=meta, _source=source)


# ---------------------------------------------------------------------------------------- Prophesee


def open_evt(path: Path, version: int) -> Recording:
    """A Prophesee RAW file, EVT 2.0 or EVT 3.0."""
    header = read_header(path, b"%", end_line="end")
    width, height = _prophesee_size(header)
    meta: dict[str, Any] = {"header": list(header.lines), "data_offset": header.data_offset}
    w = width or 0
    h = height or 0
    fmt = f"evt{version}"

    def source(batch_size: int) -> Iterator[np.ndarray]:
        if version == 2:
            state = np.array([-1, 0], dtype=np.int64)

            def call2(buf, pos, stop, out, st):  # type: ignore[no-untyped-def]
                return K.evt2_decode(buf, pos, stop, w, h, out, st)

            return _kernel_stream(path, header.data_offset, 4, call2, state, batch_size)

        state = np.zeros(K.EVT3_STATE_SIZE, dtype=np.int64)
        state[K.EVT3_TIME_HIGH] = -1
        state[K.EVT3_LAST_T] = -1

        def call3(buf, pos, stop, out, st):  # type: ignore[no-untyped-def]
            return K.evt3_decode(buf, pos, stop, w, h, out, st)

        def done(st: np.ndarray) -> None:
            meta["time_low_backwards"] = int(st[K.EVT3_TIME_LOW_BACK])
            meta["clamped_events"] = int(st[K.EVT3_CLAMPED])
            if st[K.EVT3_TIME_LOW_BACK]:
                log.info(
                    "%s: %d TIME_LOW word(s) went backwards, %d event timestamp(s) clamped",
                    path, int(st[K.EVT3_TIME_LOW_BACK]), int(st[K.EVT3_CLAMPED]),
                )  # fmt: skip

        return _kernel_stream(path, header.data_offset, 2, call3, state, batch_size, per_record=12, on_done=done)

    return Recording(path=path, format=fmt, width=width, height=height, metadata=meta, _source=source)


def open_dat(path: Path) -> Recording:
    """A Prophesee DAT file of CD events (event type byte, event size byte 8, then 8-byte records)."""
    header = read_header(path, b"%", end_line="end")
    width, height = _prophesee_size(header)
    try:
        with path.open("rb") as f:
            f.seek(header.data_offset)
            type_size = f.read(2)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from exc
    if len(type_size) < 2:
        raise _fail(path, header.data_offset, "truncated: missing the event type and size bytes")
    etype, esize = type_size[0], type_size[1]
    if esize != 8:
        raise _fail(path, header.data_offset + 1, f"unsupported DAT event size {esize} (only 8-byte CD events)")
    if etype not in (0x00, 0x0C):
        raise _fail(path, header.data_offset, f"unsupported DAT event type 0x{etype:02x} (only CD events)")
    meta = {"header": list(header.lines), "event_type": etype, "data_offset": header.data_offset + 2}
    w = width or 0
    h = height or 0

    def source(batch_size: int) -> Iterator[np.ndarray]:
        state = np.array([-1, 0], dtype=np.int64)

        def call(buf, pos, stop, out, st):  # type: ignore[no-untyped-def]
            return K.dat_decode(buf, pos, stop, w, h, out, st)

        return _kernel_stream(path, header.data_offset + 2, 8, call, state, batch_size)

    return Recording(path=path, format="dat", width=width, height=height, metadata=meta, _source=source)


# ---------------------------------------------------------------------------------------------- npy


def events_from_structured(path: Path, arr: np.ndarray) -> np.ndarray:
    """An ``EVENT_DTYPE`` copy of an (N,) structured array with integer fields t, x, y, p (range-checked)."""
    if arr.ndim != 1 or arr.dtype.names is None or not {"t", "x", "y", "p"} <= set(arr.dtype.names):
        raise RecordingError(
            f"{path}: not an event array: expected shape (N,) with fields t, x, y, p, "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.dtype == EVENT_DTYPE:
        return arr
    out = np.empty(arr.size, dtype=EVENT_DTYPE)
    limits = {"t": (np.iinfo(np.int64).min, np.iinfo(np.int64).max), "x": (0, 65535), "y": (0, 65535), "p": (0, 1)}
    for name, (lo, hi) in limits.items():
        col = arr[name]
        if col.dtype.kind not in "iub":
            raise RecordingError(f"{path}: field {name} has dtype {col.dtype}, expected an integer type")
        if col.size and (int(col.min()) < lo or int(col.max()) > hi):
            raise RecordingError(f"{path}: field {name} has values outside [{lo}, {hi}]")
        out[name] = col
    return out


def open_npy(path: Path) -> Recording:
    """A ``.npy`` file of ``EVENT_DTYPE`` (or of another integer t, x, y, p record type, converted)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # numpy's own words can leak internals (an ast node repr for a damaged header): keep them short
        detail = str(exc) if " object at 0x" not in str(exc) else "damaged header"
        raise RecordingError(f"{path}: not a readable .npy file ({detail[:200]})") from exc
    if not isinstance(arr, np.ndarray):
        raise RecordingError(f"{path}: not a single array")
    try:
        expected = arr.dtype.itemsize * arr.size
        offset = getattr(arr, "offset", 0)
        if path.stat().st_size < offset + expected:
            raise RecordingError(f"{path}: truncated: header promises {expected} bytes of data")
    except AttributeError:
        pass
    events = events_from_structured(path, arr)
    meta = {"stored_dtype": str(arr.dtype)}

    def source(batch_size: int) -> Iterator[np.ndarray]:
        step = batch_size if batch_size != WHOLE else max(events.size, 1)
        for i in range(0, events.size, step):
            yield copy_records(events[i : i + step])

    return Recording(path=path, format="npy", width=None, height=None, metadata=meta, _source=source)
