"""What the binary readers share: the error that names file and byte offset, a memory map of a file's
data, and the loop that drives a resumable decode kernel over it in bounded chunks (so a large file never
has to fit in memory twice).

Formats made of fixed-size records without checksums (N-MNIST, AEDAT 2.0, DAT) cannot tell a flipped bit
inside a timestamp from real data: such damage gives a clean read of wrong values. Everything a decoder
can notice (an undefined word type, an address outside the sensor, a partial record at the end) is a
``RecordingError`` naming the file and the byte offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.formats.kernels import ERR_BAD_ADDRESS, ERR_BAD_PACKET, ERR_BAD_TYPE
from recordings.recording import WHOLE

#: Decoded events per kernel call when the caller's batch is smaller (keeps per-call overhead low).
_MIN_CHUNK = 4096

#: What each kernel error code means, in the words of the error message.
KERNEL_ERRORS = {
    ERR_BAD_TYPE: "undefined word/event type (corrupt data)",
    ERR_BAD_ADDRESS: "address outside the sensor (corrupt data)",
    ERR_BAD_PACKET: "impossible packet header (corrupt or truncated data)",
}

#: ``call(buf, pos, stop, out, state) -> (events_written, next_pos, error, error_pos)``: one kernel call.
KernelCall = Callable[[np.ndarray, int, int, np.ndarray, np.ndarray], tuple[int, int, int, int]]


def fail(path: Path, offset: int | None, what: str) -> RecordingError:
    """The error for ``what`` is wrong in ``path`` at byte ``offset`` (``None``: no offset to name)."""
    where = f" at byte {offset}" if offset is not None else ""
    return RecordingError(f"{path}{where}: {what}")


def memmap(path: Path, offset: int) -> np.ndarray:
    """The bytes of ``path`` from ``offset`` on (a read-only memory map; an empty array for no bytes)."""
    size = path.stat().st_size
    if size <= offset:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=offset)


def kernel_stream(
    path: Path,
    data_offset: int,
    record: int,
    call: KernelCall,
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
    buf = memmap(path, data_offset)
    stop = buf.size - buf.size % record
    if buf.size % record:
        raise fail(
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
            raise fail(path, data_offset + err_pos, KERNEL_ERRORS[err])
    if on_done is not None:
        on_done(state)
