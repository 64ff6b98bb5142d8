"""AEDAT 4.0: our own reader of the event stream; writing through iniVation's dv-processing.

Layout (iniVation's "AEDAT 4.0" specification): the line ``#!AER-DAT4.0\r\n``; an int32 length and a
FlatBuffers ``IOHeader`` (identifier ``IOHE``: compression, the position of the file's data table, and an
XML description of the streams); then packets, each ``int32 stream id | int32 size | size bytes``,
every packet one size-prefixed FlatBuffer, compressed as one LZ4 or Zstandard frame (or not at all); the
data table (an index of the packets) comes last. The event stream is the one whose ``typeIdentifier`` is
``EVTS`` (``originalOutputName`` "events" first); its packets hold a vector of 16-byte records (int64
timestamp, int16 x, int16 y, bool polarity, padding), the byte layout of ``EVENT_DTYPE``, so a packet is
decompressed and viewed, not converted. Frames, IMU, triggers and other streams are skipped (logged once
per file); the data table is not needed, so a file cut short behind its last packet reads whole.

Why not dv-processing's reader: dv-processing 2.0.4 can loop forever, holding the GIL, on a packet with
damaged LZ4 data, so no watchdog could stop it. Here a damaged packet fails its decompression (or its
FlatBuffer offsets fail their bounds checks, or an address lies outside the stated sensor) and becomes a
``RecordingError`` naming the file and the packet's byte offset. ``tests/test_recordings.py`` checks the
events against dv-processing's reader on real recordings.

Decompression is bounded by the packet, never by what the frame declares: an LZ4 frame header may state
any content size (a damaged one 2**50 bytes), and ``lz4.frame.decompress`` allocates what it states. A
packet of ``n`` compressed bytes may grow to at most ``MAX_RATIO * n`` bytes (at least ``MIN_LIMIT``),
decompressed in ``_STEP`` pieces so memory follows the data actually produced; more is a corrupt packet.
The bound refuses no real packet: LZ4's format cannot exceed about 255:1, and event records (distinct
timestamps) stay near 2:1 under either codec (at most 2.01:1 over the packets of the sample recordings);
only a degenerate Zstandard frame goes beyond 1024:1.

Writing: dv-processing 2.0.4 has no bulk constructor from numpy, so events are handed over as a list of
``dv.Event`` objects per packet (about 2 µs per event; writing is not a hot path).
"""

from __future__ import annotations

import logging
import mmap
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.recording import Recording

log = logging.getLogger(__name__)

#: Events per packet written by ``write_aedat4`` (dv-processing's recorder uses packets of this order).
WRITE_PACKET = 10_000
MAGIC = b"#!AER-DAT4.0\r\n"
#: IOHeader compression values (FlatBuffers enum CompressionType)
_NONE, _LZ4, _LZ4_HIGH, _ZSTD, _ZSTD_HIGH = range(5)
_EVENT_BYTES = 16
#: Most bytes one packet may decompress to, per compressed byte, and the least limit of any packet (see above)
MAX_RATIO = 1024
MIN_LIMIT = 1 << 20
#: Bytes decompressed per step (memory grows with the output, not with a size the frame declares)
_STEP = 1 << 20


class _CorruptError(Exception):
    """Inside the reader: what is wrong, raised as a RecordingError with the file and offset."""


_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")
_PACKET = struct.Struct("<ii")
#: Where the IOHeader (and its stream description) starts: after the magic line and its int32 length
_HEADER_AT = len(MAGIC) + 4


def _u32(buf: bytes, off: int) -> int:
    if off < 0 or off + 4 > len(buf):
        msg = f"offset {off} outside a {len(buf)}-byte FlatBuffer"
        raise _CorruptError(msg)
    return int(_U32.unpack_from(buf, off)[0])


def _field(buf: bytes, table: int, index: int) -> int | None:
    """Absolute position of field ``index`` of the FlatBuffers table at ``table``, None when absent."""
    if table < 0 or table + 4 > len(buf):
        msg = f"table at {table} outside a {len(buf)}-byte FlatBuffer"
        raise _CorruptError(msg)
    vtable = table - _I32.unpack_from(buf, table)[0]
    if vtable < 0 or vtable + 4 > len(buf):
        msg = f"table at {table} has no valid vtable"
        raise _CorruptError(msg)
    vlen = _U16.unpack_from(buf, vtable)[0]
    if 4 + 2 * index + 2 > vlen or vtable + vlen > len(buf):
        return None
    rel = _U16.unpack_from(buf, vtable + 4 + 2 * index)[0]
    return table + rel if rel else None


def _vector(buf: bytes, at: int, item: int) -> tuple[int, int]:
    """(start, length) of the vector whose offset is stored at ``at``; checked against the buffer."""
    start = at + _u32(buf, at)
    n = _u32(buf, start)
    if start + 4 + n * item > len(buf):
        msg = f"vector of {n} x {item} bytes at {start} runs past the {len(buf)}-byte FlatBuffer"
        raise _CorruptError(msg)
    return start + 4, n


def _header(path: Path, data: bytes | mmap.mmap) -> tuple[int, int, str, int]:
    """(compression, data table position or -1, stream XML, first packet position)."""
    if data[: len(MAGIC)] != MAGIC:
        msg = f"{path} at byte 0: not an AEDAT 4.0 file (no '#!AER-DAT4.0' line)"
        raise RecordingError(msg)
    if len(data) < len(MAGIC) + 4:
        msg = f"{path} at byte {len(MAGIC)}: truncated inside the header"
        raise RecordingError(msg)
    size = _I32.unpack_from(data, len(MAGIC))[0]
    start = len(MAGIC) + 4
    if size < 8 or start + size > len(data):
        msg = f"{path} at byte {len(MAGIC)}: impossible header length {size} (truncated or corrupt)"
        raise RecordingError(msg)
    hdr = data[start : start + size]
    try:
        table = _u32(hdr, 0)
        compression = _field(hdr, table, 0)
        position = _field(hdr, table, 1)
        info = _field(hdr, table, 2)
        comp = struct.unpack_from("<i", hdr, compression)[0] if compression is not None else _NONE
        table_pos = struct.unpack_from("<q", hdr, position)[0] if position is not None else -1
        if info is None:
            msg = "no stream description"
            raise _CorruptError(msg)
        s0, n = _vector(hdr, info, 1)
        xml = hdr[s0 : s0 + n].decode("utf-8")
    except (_CorruptError, struct.error, UnicodeDecodeError) as exc:
        msg = f"{path} at byte {start}: corrupt file header ({exc})"
        raise RecordingError(msg) from None
    if comp not in range(5):
        msg = f"{path} at byte {start}: unknown compression {comp}"
        raise RecordingError(msg)
    return comp, table_pos, xml, start + size


def _streams(path: Path, xml: str) -> list[dict[str, Any]]:
    """The streams the header describes: id, name, type identifier, sensor size, source camera."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        msg = f"{path} at byte {_HEADER_AT}: corrupt stream description in the header ({exc})"
        raise RecordingError(msg) from None
    out = []
    for node in root.iter("node"):
        where = (node.get("path") or "").rstrip("/").split("/")
        if len(where) < 2 or where[-2] != "outInfo" or not where[-1].isdigit():  # .../outInfo/<id>/
            continue
        attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
        info = {a.get("key"): (a.text or "") for a in node.findall("node/attr")}
        out.append(
            {
                "id": int(where[-1]),
                "name": attrs.get("originalOutputName", ""),
                "type": attrs.get("typeIdentifier", ""),
                "width": int(info["sizeX"]) if info.get("sizeX", "").isdigit() else None,
                "height": int(info["sizeY"]) if info.get("sizeY", "").isdigit() else None,
                "source": info.get("source", ""),
            }
        )
    return out


def _limit(n: int) -> int:
    """The most bytes a packet of ``n`` compressed bytes may decompress to."""
    return max(MAX_RATIO * n, MIN_LIMIT)


def _too_big(n: int) -> _CorruptError:
    return _CorruptError(f"decompresses to more than {_limit(n)} bytes, over {MAX_RATIO}x its {n} bytes")


def _lz4(src: memoryview) -> bytes:
    """One LZ4 frame, decompressed step by step up to ``_limit`` (its declared content size is not trusted)."""
    import lz4.frame

    limit = _limit(src.nbytes)
    d = lz4.frame.LZ4FrameDecompressor()
    parts = [d.decompress(src, max_length=_STEP)]
    have = len(parts[0])
    while not d.eof:
        if have > limit:
            raise _too_big(src.nbytes)
        if d.needs_input:
            msg = "LZ4 frame ends early"
            raise _CorruptError(msg)
        parts.append(d.decompress(b"", max_length=_STEP))
        have += len(parts[-1])
    if have > limit:
        raise _too_big(src.nbytes)
    return b"".join(parts)


def _decompressor(path: Path, comp: int) -> Any:
    if comp in (_LZ4, _LZ4_HIGH):
        return _lz4
    if comp in (_ZSTD, _ZSTD_HIGH):
        try:
            import zstandard
        except ImportError:
            msg = f"{path}: Zstandard-compressed; install the 'zstandard' package to read it"
            raise RecordingError(msg) from None
        dctx = zstandard.ZstdDecompressor()

        def zstd(src: memoryview) -> bytes:
            limit = _limit(src.nbytes)
            reader = dctx.stream_reader(src)
            parts: list[bytes] = []
            have = 0
            while chunk := reader.read(_STEP):
                parts.append(chunk)
                have += len(chunk)
                if have > limit:
                    raise _too_big(src.nbytes)
            return b"".join(parts)

        return zstd
    return bytes


def _decompress_errors() -> tuple[type[Exception], ...]:
    """What the codecs raise for damaged data: ``RuntimeError`` (lz4), ``zstandard.ZstdError``."""
    try:
        import zstandard
    except ImportError:
        return (RuntimeError,)
    return (RuntimeError, zstandard.ZstdError)


def _packet_events(buf: bytes) -> np.ndarray:
    """The event records of one decompressed, size-prefixed ``EVTS`` FlatBuffer, as a read-only uint8 view
    (16 bytes per event; viewed as ``EVENT_DTYPE`` once the packets of a batch are joined: concatenating
    structured arrays costs far more than the bytes)."""
    if _u32(buf, 0) != len(buf) - 4:
        msg = f"size prefix {_u32(buf, 0)} for {len(buf) - 4} bytes"
        raise _CorruptError(msg)
    table = 4 + _u32(buf, 4)
    at = _field(buf, table, 0)
    if at is None:
        return np.zeros(0, np.uint8)
    start, n = _vector(buf, at, _EVENT_BYTES)
    return np.frombuffer(buf, dtype=np.uint8, count=n * _EVENT_BYTES, offset=start)


def _packets(
    path: Path, data: bytes | mmap.mmap, first: int, end: int, stream: int, comp: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Walk the packets from ``first`` to ``end``; yield (position, events) of those of ``stream``."""
    decompress = _decompressor(path, comp)
    damaged: tuple[type[Exception], ...] = (_CorruptError, ValueError, struct.error, *_decompress_errors())
    view = memoryview(data)
    pos = first
    while pos < end:
        if pos + 8 > end:
            msg = f"{path} at byte {pos}: truncated inside a packet header"
            raise RecordingError(msg)
        sid, n = _PACKET.unpack_from(data, pos)
        if n <= 0 or pos + 8 + n > end:
            msg = (
                f"{path} at byte {pos}: a packet of stream {sid} with {n} bytes does not fit the file "
                "(truncated or corrupt)"
            )
            raise RecordingError(msg)
        if sid == stream:
            try:
                yield pos, _packet_events(decompress(view[pos + 8 : pos + 8 + n]))
            except damaged as exc:
                msg = f"{path} at byte {pos}: corrupt event packet ({exc})"
                raise RecordingError(msg) from None
        pos += 8 + n


def _outside(ev: np.ndarray, width: int | None, height: int | None) -> bool:
    """Whether any event lies outside the stated sensor or has a polarity other than 0/1 (x, y are int16 in
    the file: a negative one reads as >= 32768 here and is caught too)."""
    if width is None or height is None or not ev.size:
        return False
    return int(ev["x"].max()) >= width or int(ev["y"].max()) >= height or int(ev["p"].max()) > 1


def open_aedat4(path: Path) -> Recording:
    """An AEDAT 4.0 file's event stream."""
    try:
        with path.open("rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
    except OSError as exc:
        msg = f"{path}: cannot read ({exc.strerror})"
        raise RecordingError(msg) from None
    comp, table_pos, xml, first = _header(path, data)
    streams = _streams(path, xml)
    events = [s for s in streams if s["type"] == "EVTS"]
    if not events:
        msg = (
            f"{path} at byte {_HEADER_AT}: the header describes no event stream "
            f"(streams: {[s['name'] for s in streams]})"
        )
        raise RecordingError(msg)
    chosen = next((s for s in events if s["name"] == "events"), events[0])
    others = [s["name"] for s in streams if s is not chosen]
    if others:
        log.info("%s: ignoring the non-event streams %s", path, others)
    # the data table, when there is one, starts right after the last packet
    end = table_pos if first <= table_pos <= len(data) else len(data)
    width, height = chosen["width"], chosen["height"]
    meta = {"camera": chosen["source"], "streams": [s["name"] for s in streams], "compression": comp}

    def source(batch_size: int) -> Iterator[np.ndarray]:
        limit = batch_size if batch_size > 0 else 1 << 62
        # packets hold a few hundred to a few thousand events: yield them in groups of at least batch_size
        parts: list[tuple[int, np.ndarray]] = []
        have = 0
        for pos, ev in _packets(path, data, first, end, chosen["id"], comp):
            if ev.size:
                parts.append((pos, ev))
                have += ev.size // _EVENT_BYTES
            if have >= limit:
                yield _batch(parts)
                parts, have = [], 0
        if parts:
            yield _batch(parts)

    def _batch(parts: list[tuple[int, np.ndarray]]) -> np.ndarray:
        # a fresh, writable array (a single packet would otherwise be a read-only view of its buffer)
        out: np.ndarray = np.concatenate([raw for _, raw in parts]).view(EVENT_DTYPE)
        if _outside(out, width, height):  # checked per batch; per packet only to name the bad one
            pos = next(pos for pos, raw in parts if _outside(raw.view(EVENT_DTYPE), width, height))
            msg = f"{path} at byte {pos}: corrupt event packet (an event outside the {width}x{height} sensor)"
            raise RecordingError(msg)
        return out

    return Recording(path=path, format="aedat4", width=width, height=height, metadata=meta, _source=source)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # dv-processing puts the source location first and the reason on the next line.
    return " ".join(line.strip() for line in text[:2]) if text else type(exc).__name__


def write_aedat4(path: Path, events: np.ndarray, width: int, height: int, *, camera: str = "spikestream") -> None:
    """Write ``events`` (``EVENT_DTYPE``, validated by the caller) as an AEDAT 4.0 event-only file."""
    import dv_processing as dv

    if path.suffix.lower() != ".aedat4":
        # dv-processing 2.0.4 terminates the whole process (std::terminate) for any other suffix.
        msg = f"an AEDAT 4.0 file name must end in .aedat4, got {path}"
        raise ValueError(msg)
    config = dv.io.MonoCameraWriter.EventOnlyConfig(camera, (int(width), int(height)))
    try:
        writer = dv.io.MonoCameraWriter(str(path), config)
    except RuntimeError as exc:
        msg = f"{path}: dv-processing cannot create it: {_first_line(exc)}"
        raise RecordingError(msg) from exc
    for i in range(0, events.size, WRITE_PACKET):
        part = events[i : i + WRITE_PACKET]
        vec = dv.EventPacket.EventVector(
            list(
                map(
                    dv.Event,
                    part["t"].tolist(),
                    part["x"].tolist(),
                    part["y"].tolist(),
                    part["p"].astype(bool).tolist(),
                )
            )
        )
        writer.writeEventPacket(dv.EventPacket(vec))
    del writer  # closes the file and writes the file table
