"""N-MNIST ``.bin`` files (Orchard et al. 2015): 40-bit ATIS records on a 34x34 sensor, read and written.

Each record: x, y, then polarity (bit 7) and a 23-bit microsecond timestamp. A record with y == 240 is a
timestamp-overflow marker. The files have no magic: the suffix ``.bin`` selects the format. An empty file
is an error, not a sample without events (a sample that lost its data must not pass for a blank digit), so
the writer refuses to write one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.formats.kernels.nmnist import NMNIST_SIZE, nmnist_decode, nmnist_encode
from recordings.formats.reading import KERNEL_ERRORS, fail, kernel_stream
from recordings.formats.writing import atomic_write_bytes, check_events
from recordings.recording import Recording

_RECORD = 5


def _empty(path: Path) -> RecordingError:
    return fail(path, 0, "empty file: an N-MNIST .bin holds 5-byte event records, this one none")


def open_nmnist(path: Path) -> Recording:
    """An N-MNIST (Orchard 40-bit ATIS) ``.bin`` file; sensor 34x34."""
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        msg = f"{path}: cannot read ({exc.strerror})"
        raise RecordingError(msg) from None
    if empty:
        raise _empty(path)

    def source(batch_size: int) -> Iterator[np.ndarray]:
        state = np.zeros(1, dtype=np.int64)
        return kernel_stream(path, 0, _RECORD, nmnist_decode, state, batch_size)

    size = NMNIST_SIZE
    return Recording(
        path=path, format="nmnist", width=size, height=size, metadata={"sensor": "ATIS 34x34"}, _source=source
    )


def read_nmnist_bytes(path: Path, raw: bytes) -> np.ndarray:
    """Decode the complete contents of an N-MNIST file in one call (the fast path of the dataset)."""
    if not raw:
        raise _empty(path)
    if len(raw) % _RECORD:
        stop = len(raw) - len(raw) % _RECORD
        raise fail(path, stop, f"truncated: {len(raw) % _RECORD} trailing byte(s), not a whole {_RECORD}-byte record")
    buf = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty(len(raw) // _RECORD, dtype=EVENT_DTYPE)
    state = np.zeros(1, dtype=np.int64)
    n, _, err, err_pos = nmnist_decode(buf, 0, buf.size, out, state)
    if err:
        raise fail(path, err_pos, KERNEL_ERRORS[err])
    return out[:n] if n < out.size else out


def encode_nmnist(events: np.ndarray) -> bytes:
    """The N-MNIST bytes of ``events``: at least one event (an empty file reads as an error), x, y inside the
    34x34 sensor (the reader refuses anything else as corrupt), 0 <= t < 2**23."""
    events = check_events(events)
    if not events.size:
        msg = "N-MNIST files hold at least one event (an empty .bin is read as a damaged sample); write .npy"
        raise ValueError(msg)
    for name in ("x", "y"):
        m = int(events[name].max())
        if m >= NMNIST_SIZE:
            msg = (
                f"N-MNIST files hold a {NMNIST_SIZE}x{NMNIST_SIZE} sensor: found {name} = {m}; write .npy, "
                ".aedat4 or .aedat3, which hold the sensor size"
            )
            raise ValueError(msg)
    t_min, t_max = int(events["t"].min()), int(events["t"].max())
    if t_min < 0 or t_max >= 1 << 23:
        msg = (
            f"N-MNIST timestamps are 23-bit microseconds [0, {(1 << 23) - 1}]: found [{t_min}, {t_max}]; "
            "write .npy or .aedat4, which hold any timestamp"
        )
        raise ValueError(msg)
    out = np.empty(events.size * _RECORD, dtype=np.uint8)
    nmnist_encode(events["t"], events["x"], events["y"], events["p"], out)
    return out.tobytes()


def write_nmnist(path: Path, events: np.ndarray) -> None:
    """Write an N-MNIST ``.bin`` file (see ``encode_nmnist`` for the limits)."""
    atomic_write_bytes(path, encode_nmnist(events))
