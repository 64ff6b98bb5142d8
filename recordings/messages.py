"""Message logs: any stream of the graph (events, spikes, labels, predictions, control) kept in a file and
played back later, exactly as it was sent.

Layout: the 8-byte magic ``SPKLOG\\x00\\x01``, then one record per message::

    u32 topic length | u32 header length | u64 payload length | topic | header | payload

(little-endian) where topic, header and payload are the three frames of the wire format
(``pipeline.wire``), so a log holds what went over a link, byte for byte, and decoding it runs the same
checks as a message received from a socket. A record is written whole or, after a crash, cut short at the
end of the file: the reader stops there and says where (``TruncatedLogError``); anything else that does not
decode is a ``RecordingError`` naming the file and the byte offset of the record. A payload is read only
once the file is known to hold it: a record that declares more bytes than the file has left is cut short,
found without allocating what it declares.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipeline import wire
from pipeline.errors import RecordingError, WireFormatError
from pipeline.message import Message

MAGIC = b"SPKLOG\x00\x01"
_LENGTHS = struct.Struct("<IIQ")
#: Sanity limits of one record (a wrong length word is a corrupt file, not an allocation of gigabytes)
MAX_TOPIC = 64
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 34


class TruncatedLogError(RecordingError):
    """The log ends inside a record (its writer stopped mid-write); ``offset`` is where that record starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class MessageLogWriter:
    """Appends messages to a log file.

    ``resume_at=None`` creates a new file and refuses to replace an existing one. ``resume_at=N`` reopens
    an existing log and cuts it back to its first ``N`` bytes (a checkpointed ``offset``), so that a graph
    resumed from a checkpoint writes the rest of the stream exactly once.
    """

    def __init__(self, path: str | Path, resume_at: int | None = None) -> None:
        self.path = Path(path)
        if resume_at is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._file: BinaryIO = self.path.open("xb")
            except FileExistsError:
                msg = f"{self.path}: already exists; a message log is never replaced (remove it or choose another path)"
                raise RecordingError(msg) from None
            self._file.write(MAGIC)
            self.offset = len(MAGIC)
            return
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            msg = f"{self.path}: missing, but the checkpoint says {resume_at} bytes were written"
            raise RecordingError(msg) from None
        if size < resume_at or resume_at < len(MAGIC):
            msg = f"{self.path}: holds {size} bytes, but the checkpoint says {resume_at} were written and kept"
            raise RecordingError(msg)
        self._file = self.path.open("r+b")
        if self._file.read(len(MAGIC)) != MAGIC:
            self._file.close()
            msg = f"{self.path}: not a spikestream message log (bad magic at byte 0)"
            raise RecordingError(msg)
        self._file.truncate(resume_at)
        self._file.seek(resume_at)
        self.offset = resume_at

    def write(self, msg: Message) -> None:
        """Append ``msg`` as one record (buffered; ``sync`` makes it durable)."""
        frames = [memoryview(f) for f in wire.encode(msg)]
        topic, header, payload = frames
        self._file.write(_LENGTHS.pack(topic.nbytes, header.nbytes, payload.nbytes))
        for frame in frames:
            self._file.write(frame)
        self.offset += _LENGTHS.size + topic.nbytes + header.nbytes + payload.nbytes

    def sync(self) -> int:
        """Push everything written to the disk; returns the offset that is now durable."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return self.offset

    def close(self) -> None:
        """Sync and close the file (a second call does nothing)."""
        if not self._file.closed:
            self.sync()
            self._file.close()


def read_messages(path: str | Path) -> Iterator[Message]:
    """The messages of a log, in order. Raises ``TruncatedLogError`` at a cut-short end (after yielding every
    complete message) and ``RecordingError`` for anything else that is wrong."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        msg = f"{path}: cannot open: {exc.strerror}"
        raise RecordingError(msg) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if f.read(len(MAGIC)) != MAGIC:
            msg = f"{path}: not a spikestream message log (bad magic at byte 0)"
            raise RecordingError(msg)
        offset = len(MAGIC)
        while True:
            lengths = f.read(_LENGTHS.size)
            if not lengths:
                return
            if len(lengths) < _LENGTHS.size:
                raise _cut_short(path, offset)
            n_topic, n_header, n_payload = _LENGTHS.unpack(lengths)
            if n_topic > MAX_TOPIC or n_header > MAX_HEADER or n_payload > MAX_PAYLOAD:
                msg = f"{path}: corrupt record at byte {offset} (frame lengths {n_topic}/{n_header}/{n_payload})"
                raise RecordingError(msg)
            head = f.read(n_topic + n_header)
            if len(head) < n_topic + n_header:
                raise _cut_short(path, offset)
            topic, header = head[:n_topic], head[n_topic:]
            try:
                # the header says how long the payload is: a damaged length word is corruption, and is
                # not mistaken for a log cut short (which would drop the rest of the file quietly)
                expected = wire.payload_size(topic, header)
                if n_payload != expected:
                    msg = f"payload length word {n_payload}, but its header describes {expected} bytes"
                    raise WireFormatError(msg)
                if f.tell() + n_payload > size:  # before f.read allocates what the record declares
                    size = os.fstat(f.fileno()).st_size  # (a log still being written may have grown)
                    if f.tell() + n_payload > size:
                        raise _cut_short(path, offset)
                payload = f.read(n_payload)
                if len(payload) < n_payload:
                    raise _cut_short(path, offset)
                message = wire.decode([topic, header, payload])
            except WireFormatError as exc:
                msg = f"{path}: corrupt record at byte {offset}: {exc}"
                raise RecordingError(msg) from None
            yield message
            offset += _LENGTHS.size + n_topic + n_header + n_payload


def _cut_short(path: Path, offset: int) -> TruncatedLogError:
    return TruncatedLogError(f"{path}: ends inside the record at byte {offset}", offset)


def is_message_log(path: str | Path) -> bool:
    """Whether ``path`` starts with the message-log magic (``False`` for a file that cannot be read)."""
    try:
        with Path(path).open("rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def describe(path: str | Path) -> dict[str, Any]:
    """What a log holds (for ``spikestream info``): messages and records per kind, control commands, the
    time span and sensor sizes of its data, and where it ends if it was cut short."""
    messages: Counter[str] = Counter()
    records: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    sizes: set[tuple[int | None, int | None]] = set()
    t_first: int | None = None
    t_last: int | None = None
    truncated_at = None
    try:
        for msg in read_messages(path):
            messages[msg.kind] += 1
            if msg.command:
                commands[msg.command] += 1
            if msg.data is None:
                continue
            records[msg.kind] += msg.count
            if msg.width is not None or msg.height is not None:
                sizes.add((msg.width, msg.height))
            if msg.count and "t" in (msg.data.dtype.names or ()):
                t_first = int(msg.data["t"][0]) if t_first is None else min(t_first, int(msg.data["t"][0]))
                t_last = int(msg.data["t"][-1]) if t_last is None else max(t_last, int(msg.data["t"][-1]))
    except TruncatedLogError as exc:
        truncated_at = exc.offset
    return {
        "path": str(path),
        "format": "spikestream message log",
        "messages": dict(messages),
        "records": dict(records),
        "controls": dict(commands),
        "sizes": sorted(f"{w}x{h}" for w, h in sizes),
        "t_first": t_first,
        "t_last": t_last,
        "truncated_at": truncated_at,
    }
