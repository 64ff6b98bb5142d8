"""``.npy`` files of events: ``EVENT_DTYPE`` arrays (read and written as they are) or any other record
array with integer fields t, x, y, p (converted on reading, each field range-checked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, copy_records
from recordings.formats.writing import atomic_write, check_events
from recordings.recording import WHOLE, Recording

#: The range each field of a converted array must fit (the fields of ``EVENT_DTYPE``).
_LIMITS = {
    "t": (np.iinfo(np.int64).min, np.iinfo(np.int64).max),
    "x": (0, 65535),
    "y": (0, 65535),
    "p": (0, 1),
}


def events_from_structured(path: Path, arr: np.ndarray) -> np.ndarray:
    """An ``EVENT_DTYPE`` copy of an (N,) structured array with integer fields t, x, y, p (range-checked)."""
    if arr.ndim != 1 or arr.dtype.names is None or not {"t", "x", "y", "p"} <= set(arr.dtype.names):
        msg = (
            f"{path}: not an event array: expected shape (N,) with fields t, x, y, p, "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
        raise RecordingError(msg)
    if arr.dtype == EVENT_DTYPE:
        return arr
    out = np.empty(arr.size, dtype=EVENT_DTYPE)
    for name, (lo, hi) in _LIMITS.items():
        col = arr[name]
        if col.dtype.kind not in "iub":
            msg = f"{path}: field {name} has dtype {col.dtype}, expected an integer type"
            raise RecordingError(msg)
        if col.size and (int(col.min()) < lo or int(col.max()) > hi):
            msg = f"{path}: field {name} has values outside [{lo}, {hi}]"
            raise RecordingError(msg)
        out[name] = col
    return out


def open_npy(path: Path) -> Recording:
    """A ``.npy`` file of ``EVENT_DTYPE`` (or of another integer t, x, y, p record type, converted)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # numpy's own words can leak internals (an ast node repr for a damaged header): keep them short
        detail = str(exc) if " object at 0x" not in str(exc) else "damaged header"
        msg = f"{path}: not a readable .npy file ({detail[:200]})"
        raise RecordingError(msg) from exc
    if not isinstance(arr, np.ndarray):
        msg = f"{path}: not a single array"
        raise RecordingError(msg)
    expected = arr.dtype.itemsize * arr.size
    offset = getattr(arr, "offset", 0)  # a memory map knows where its data starts
    if path.stat().st_size < offset + expected:
        msg = f"{path}: truncated: header promises {expected} bytes of data"
        raise RecordingError(msg)
    events = events_from_structured(path, arr)
    meta = {"stored_dtype": str(arr.dtype)}

    def source(batch_size: int) -> Iterator[np.ndarray]:
        step = batch_size if batch_size != WHOLE else max(events.size, 1)
        for i in range(0, events.size, step):
            yield copy_records(events[i : i + step])

    return Recording(path=path, format="npy", width=None, height=None, metadata=meta, _source=source)


def write_npy(path: Path, events: np.ndarray) -> None:
    """Write ``events`` as a ``.npy`` file of ``EVENT_DTYPE``."""
    events = check_events(events)

    def write(p: Path) -> None:
        with p.open("wb") as f:
            np.save(f, events, allow_pickle=False)

    atomic_write(path, write)
