"""``.npy`` files of events: ``EVENT_DTYPE`` arrays (read and written as they are) or any other record
array with integer fields t, x, y, p (converted on reading).

The header is parsed here, not by ``np.load``: numpy lets a damaged header dict escape as whatever its
parser meets (``tokenize.TokenError``, ``SyntaxError``, an ast node's repr), and a header it accepts may
still describe what no event file is (a subarray field ``('t', '<i8', (2,))``, a shape of 2**60 records).
Every such file is a ``RecordingError`` naming the file and the byte offset of what is wrong. The data is
then memory-mapped and checked batch by batch as it is read, as every reader checks its events: ``p`` in
{0, 1}, each field within the range of its ``EVENT_DTYPE`` field (an ``.npy`` states no sensor size); the
error names the byte offset of the first event outside.
"""

from __future__ import annotations

import ast
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, copy_records
from recordings.formats.reading import fail
from recordings.formats.writing import atomic_write, check_events
from recordings.recording import WHOLE, Recording

#: numpy's .npy descr parser, typed (numpy < 2.4 ships it without annotations)
_descr_to_dtype: Callable[[Any], np.dtype[Any]] = np.lib.format.descr_to_dtype
MAGIC = b"\x93NUMPY"
#: Longest header dict accepted, in bytes (numpy's own reader refuses more than 10,000 by default).
MAX_HEADER = 10_000
#: The range each field must fit (those of ``EVENT_DTYPE``; ``p`` is a polarity, 0 = OFF, 1 = ON).
_LIMITS = {
    "t": (np.iinfo(np.int64).min, np.iinfo(np.int64).max),
    "x": (0, 65535),
    "y": (0, 65535),
    "p": (0, 1),
}


def _header(path: Path) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """The dtype and shape that the header of the ``.npy`` file at ``path`` states, checked; where the header
    dict and where the data start."""
    try:
        with path.open("rb") as f:
            head = f.read(12 + MAX_HEADER)
    except OSError as exc:
        msg = f"{path}: cannot read ({exc.strerror})"
        raise RecordingError(msg) from None
    if not head.startswith(MAGIC):
        raise fail(path, 0, "not a .npy file (no \\x93NUMPY magic)")
    if len(head) < 10:
        raise fail(path, len(head), "truncated inside the .npy preamble")
    major = head[6]
    if major not in (1, 2, 3):
        raise fail(path, 6, f"unsupported .npy format version {major}.{head[7]}")
    start = 10 if major == 1 else 12
    if len(head) < start:
        raise fail(path, len(head), "truncated inside the .npy preamble")
    size = struct.unpack_from("<H" if major == 1 else "<I", head, 8)[0]
    if size > MAX_HEADER:
        raise fail(path, 8, f"header length {size} bytes, more than the {MAX_HEADER} a .npy header may have")
    if len(head) < start + size:
        raise fail(path, len(head), f"truncated inside the header ({size} bytes from byte {start})")
    text = head[start : start + size].decode("utf-8" if major == 3 else "latin1", errors="replace")
    try:
        fields = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        # SyntaxError covers tokenize's complaints and IndentationError; the header is at most MAX_HEADER bytes
        raise fail(path, start, "damaged .npy header (not a Python dict literal)") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise fail(path, start, "damaged .npy header (expected the keys descr, fortran_order, shape)")
    shape = fields["shape"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise fail(path, start, f"damaged .npy header (shape {str(shape)[:60]})")
    if not isinstance(fields["fortran_order"], bool):
        raise fail(path, start, "damaged .npy header (fortran_order is not True or False)")
    try:
        dtype = _descr_to_dtype(fields["descr"])
    except Exception:  # noqa: BLE001 - numpy's dtype parser raises whatever a malformed descr provokes
        raise fail(path, start, f"damaged .npy header (descr {str(fields['descr'])[:60]})") from None
    return dtype, shape, start, start + size


def _event_fields(path: Path, dtype: np.dtype, shape: tuple[int, ...], offset: int) -> None:
    """Refuse an array that is not (N,) records with integer scalar fields t, x, y, p (``offset``: where the
    header that says so starts)."""
    if len(shape) != 1 or dtype.names is None or not {"t", "x", "y", "p"} <= set(dtype.names):
        raise fail(
            path,
            offset,
            f"not an event array: expected shape (N,) with fields t, x, y, p, got shape {shape} dtype {dtype}",
        )
    if dtype.hasobject:
        raise fail(path, offset, "an array of Python objects (needs pickle, which is never loaded)")
    for name in _LIMITS:
        field: Any = dtype.fields[name][0]  # type: ignore[index]
        if field.shape != () or field.kind not in "iub":
            raise fail(path, offset, f"field {name} has dtype {field}, expected one integer per event")


def _check(path: Path, part: np.ndarray, first: int, offset: int) -> np.ndarray:
    """``part`` (events ``first``... of the file) as a fresh ``EVENT_DTYPE`` array, or the error naming the
    byte offset of its first event outside ``_LIMITS`` (``offset``: where the file's data starts)."""
    same = part.dtype == EVENT_DTYPE
    for name, (lo, hi) in _LIMITS.items():
        col = part[name]
        if col.dtype.kind == "b" or not col.size:
            continue
        info = np.iinfo(col.dtype)
        low, high = info.min < lo, info.max > hi  # whether the field's type can hold a value outside at all
        if (low and int(col.min()) < lo) or (high and int(col.max()) > hi):
            bad = np.zeros(col.size, dtype=bool)
            if low:
                bad |= col < lo
            if high:
                bad |= col > hi
            i = int(np.flatnonzero(bad)[0])
            what = f"event {first + i} has {name} = {int(col[i])}, outside [{lo}, {hi}]"
            raise fail(path, offset + (first + i) * part.dtype.itemsize, what)
    if same:
        return copy_records(part)
    out = np.empty(part.size, dtype=EVENT_DTYPE)
    for name in _LIMITS:
        out[name] = part[name]
    return out


def open_npy(path: Path) -> Recording:
    """A ``.npy`` file of ``EVENT_DTYPE`` (or of another integer t, x, y, p record type, converted)."""
    dtype, shape, header, offset = _header(path)
    _event_fields(path, dtype, shape, header)
    count = shape[0]
    expected = dtype.itemsize * count
    size = path.stat().st_size
    if size < offset + expected:
        what = f"truncated: the header promises {expected} bytes of data from byte {offset}, the file ends"
        raise fail(path, size, what)
    meta = {"stored_dtype": str(dtype), "data_offset": offset}

    def source(batch_size: int) -> Iterator[np.ndarray]:
        if not count:
            return
        data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(count,))
        step = batch_size if batch_size != WHOLE else count
        for i in range(0, count, step):
            yield _check(path, data[i : i + step], i, offset)

    return Recording(path=path, format="npy", width=None, height=None, metadata=meta, _source=source)


def write_npy(path: Path, events: np.ndarray) -> None:
    """Write ``events`` as a ``.npy`` file of ``EVENT_DTYPE``."""
    events = check_events(events)

    def write(p: Path) -> None:
        with p.open("wb") as f:
            np.save(f, events, allow_pickle=False)

    atomic_write(path, write)
