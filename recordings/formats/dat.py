"""Prophesee DAT files: ``%`` header lines, an event type byte and an event size byte, then 8-byte CD
records (uint32 timestamp, uint32 with x, y and polarity)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from recordings.formats.header import prophesee_size, read_header
from recordings.formats.kernels.prophesee import dat_decode
from recordings.formats.reading import fail, kernel_stream
from recordings.recording import Recording

_RECORD = 8
#: The event type bytes read as CD events.
_CD_TYPES = (0x00, 0x0C)


def open_dat(path: Path) -> Recording:
    """A Prophesee DAT file of CD events (event type byte, event size byte 8, then 8-byte records)."""
    header = read_header(path, b"%", end_line="end")
    width, height = prophesee_size(header)
    try:
        with path.open("rb") as f:
            f.seek(header.data_offset)
            type_size = f.read(2)
    except OSError as exc:
        msg = f"{path}: cannot read ({exc})"
        raise RecordingError(msg) from exc
    if len(type_size) < 2:
        raise fail(path, header.data_offset, "truncated: missing the event type and size bytes")
    etype, esize = type_size[0], type_size[1]
    if esize != _RECORD:
        raise fail(path, header.data_offset + 1, f"unsupported DAT event size {esize} (only 8-byte CD events)")
    if etype not in _CD_TYPES:
        raise fail(path, header.data_offset, f"unsupported DAT event type 0x{etype:02x} (only CD events)")
    meta = {"header": list(header.lines), "event_type": etype, "data_offset": header.data_offset + 2}
    w = width or 0
    h = height or 0

    def call(buf: np.ndarray, pos: int, stop: int, out: np.ndarray, state: np.ndarray) -> tuple[int, int, int, int]:
        return dat_decode(buf, pos, stop, w, h, out, state)

    def source(batch_size: int) -> Iterator[np.ndarray]:
        state = np.array([-1, 0], dtype=np.int64)
        return kernel_stream(path, header.data_offset + 2, _RECORD, call, state, batch_size)

    return Recording(path=path, format="dat", width=width, height=height, metadata=meta, _source=source)
