"""``convert``: one event file rewritten in another format, the writer chosen by the new name's suffix."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.files import WRITE_SUFFIXES, open_recording, sensor_size, write_recording
from recordings.summary import info

log = logging.getLogger(__name__)


def convert(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Convert the event file ``src`` to ``dst`` (writer chosen by the suffix of ``dst``); returns ``info(dst)``.

    When ``src`` does not state its sensor size and the target format needs one, the size is taken as
    (max x + 1, max y + 1) of the events and logged. Every error is a ``RecordingError`` naming the file it
    is about and saying what the command line can do about it (``spikestream convert`` has no options: the
    output name's suffix is the only choice).
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        msg = f"{src}: convert reads it and would write it: choose another output name"
        raise RecordingError(msg)
    if dst.exists():  # swapped arguments must not clobber a recording
        msg = f"{dst}: already exists; convert never replaces a file (remove it or choose another name)"
        raise RecordingError(msg)
    if dst.suffix.lower() not in WRITE_SUFFIXES:
        msg = f"{dst}: the output format follows the name's suffix: end it in {_suffixes()}"
        raise RecordingError(msg)
    rec = open_recording(src)
    events = rec.read_all()
    width, height = sensor_size(rec, events)
    if (width, height) != (rec.width, rec.height):
        log.info("%s states no sensor size; using %dx%d from its events", src, width, height)
    if events.dtype != EVENT_DTYPE:  # pragma: no cover - readers always convert
        msg = f"{src}: reader returned {events.dtype}"
        raise RecordingError(msg)
    try:
        write_recording(dst, events, width, height)
    except ValueError as exc:  # what the target format cannot hold
        msg = f"{dst}: cannot hold the events of {src}: {exc}"
        raise RecordingError(msg) from None
    return info(dst)


def _suffixes() -> str:
    names = {".bin": ".bin (N-MNIST)"}
    return ", ".join(names.get(s, s) for s in sorted(WRITE_SUFFIXES))
