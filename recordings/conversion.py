"""``convert``: one event file rewritten in another format, the writer chosen by the new name's suffix."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.files import open_recording, sensor_size, write_recording
from recordings.summary import info

log = logging.getLogger(__name__)


def convert(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Convert the event file ``src`` to ``dst`` (writer chosen by the suffix of ``dst``); returns ``info(dst)``.

    When ``src`` does not state its sensor size and the target format needs one, the size is taken as
    (max x + 1, max y + 1) of the events and logged.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        msg = f"convert: source and destination are the same file {src}"
        raise ValueError(msg)
    if dst.exists():  # swapped arguments must not clobber a recording
        msg = f"{dst}: already exists; convert never replaces a file (remove it or choose another name)"
        raise RecordingError(msg)
    rec = open_recording(src)
    events = rec.read_all()
    width, height = sensor_size(rec, events)
    if (width, height) != (rec.width, rec.height):
        log.info("%s states no sensor size; using %dx%d from its events", src, width, height)
    if events.dtype != EVENT_DTYPE:  # pragma: no cover - readers always convert
        msg = f"{src}: reader returned {events.dtype}"
        raise RecordingError(msg)
    write_recording(dst, events, width, height)
    return info(dst)
