"""Prophesee RAW files: ``%`` header lines up to ``% end``, then EVT 2.0 (32-bit) or EVT 3.0 (16-bit) words.

EVT 3.0 TIME_LOW going backwards. In the real Gen4.1 sample a TIME_LOW is sometimes followed by a smaller
TIME_LOW under the same TIME_HIGH (for example 811 then 800, once per millisecond). The step is a few µs,
far too small to be a lost TIME_HIGH (that would move time by 4096 µs), so it is not treated as a wrap.
Timestamps are computed at face value, and an event whose timestamp would be earlier than the last emitted
one is *clamped* to it, so every reader output is non-decreasing in time. In the sample no event falls
between the larger and the smaller TIME_LOW, so the clamp changes nothing there; both the number of
backward TIME_LOW words and of clamped events are reported in ``metadata`` after a full read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from recordings.formats.header import prophesee_size, read_header
from recordings.formats.kernels.prophesee import (
    EVT3_CLAMPED,
    EVT3_LAST_T,
    EVT3_STATE_SIZE,
    EVT3_TIME_HIGH,
    EVT3_TIME_LOW_BACK,
    evt2_decode,
    evt3_decode,
)
from recordings.formats.reading import kernel_stream
from recordings.recording import Recording

log = logging.getLogger(__name__)

#: Bytes per word, and at most how many events one EVT 3.0 word yields (a VECT_12).
_EVT2_WORD = 4
_EVT3_WORD = 2
_EVT3_MAX_EVENTS = 12


def open_evt(path: Path, version: int) -> Recording:
    """A Prophesee RAW file, EVT 2.0 or EVT 3.0."""
    header = read_header(path, b"%", end_line="end")
    width, height = prophesee_size(header)
    meta: dict[str, Any] = {"header": list(header.lines), "data_offset": header.data_offset}
    w = width or 0
    h = height or 0

    def call2(buf: np.ndarray, pos: int, stop: int, out: np.ndarray, state: np.ndarray) -> tuple[int, int, int, int]:
        return evt2_decode(buf, pos, stop, w, h, out, state)

    def call3(buf: np.ndarray, pos: int, stop: int, out: np.ndarray, state: np.ndarray) -> tuple[int, int, int, int]:
        return evt3_decode(buf, pos, stop, w, h, out, state)

    def done(state: np.ndarray) -> None:
        back, clamped = int(state[EVT3_TIME_LOW_BACK]), int(state[EVT3_CLAMPED])
        meta["time_low_backwards"] = back
        meta["clamped_events"] = clamped
        if back:
            log.info("%s: %d TIME_LOW word(s) went backwards, %d event timestamp(s) clamped", path, back, clamped)

    def source(batch_size: int) -> Iterator[np.ndarray]:
        if version == 2:
            state = np.array([-1, 0], dtype=np.int64)
            return kernel_stream(path, header.data_offset, _EVT2_WORD, call2, state, batch_size)
        state = np.zeros(EVT3_STATE_SIZE, dtype=np.int64)
        state[EVT3_TIME_HIGH] = -1
        state[EVT3_LAST_T] = -1
        return kernel_stream(
            path, header.data_offset, _EVT3_WORD, call3, state, batch_size, per_record=_EVT3_MAX_EVENTS, on_done=done
        )

    return Recording(path=path, format=f"evt{version}", width=width, height=height, metadata=meta, _source=source)
