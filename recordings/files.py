"""Opening and writing event files: the reader that a file's content calls for, the writer that a name's
suffix calls for, and the sensor size to use when a file states none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recordings.detect import detect_format
from recordings.formats.aedat2 import open_aedat2
from recordings.formats.aedat3 import open_aedat3, write_aedat3
from recordings.formats.aedat4 import open_aedat4, write_aedat4
from recordings.formats.dat import open_dat
from recordings.formats.evt import open_evt
from recordings.formats.nmnist import open_nmnist, write_nmnist
from recordings.formats.npy import open_npy, write_npy
from recordings.formats.writing import check_events
from recordings.recording import Recording

#: Writers chosen by suffix (``write_recording``); ``format=`` overrides the suffix.
WRITE_SUFFIXES = {".aedat4": "aedat4", ".bin": "nmnist", ".npy": "npy", ".aedat3": "aedat3"}


def open_recording(path: str | Path) -> Recording:
    """Open the event file at ``path`` (format detected from its content)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "nmnist":
        return open_nmnist(path)
    if fmt == "aedat2":
        return open_aedat2(path)
    if fmt == "aedat3":
        return open_aedat3(path)
    if fmt == "evt2":
        return open_evt(path, 2)
    if fmt == "evt3":
        return open_evt(path, 3)
    if fmt == "dat":
        return open_dat(path)
    if fmt == "npy":
        return open_npy(path)
    return open_aedat4(path)


def sensor_size(rec: Recording, events: np.ndarray) -> tuple[int, int]:
    """The sensor size ``rec`` states or, where it states none, the extent of its ``events``
    (max x + 1, max y + 1; 1 when there are no events)."""
    width = rec.width or int(events["x"].max(initial=0)) + 1
    height = rec.height or int(events["y"].max(initial=0)) + 1
    return int(width), int(height)


def write_recording(
    path: str | Path, events: np.ndarray, width: int | None, height: int | None, *, format: str | None = None
) -> None:
    """Write ``events`` (``EVENT_DTYPE``) to ``path``; the writer follows the suffix (``WRITE_SUFFIXES``)
    unless ``format`` names one. ``.aedat4`` and ``.aedat3`` need the sensor size; ``.bin`` is N-MNIST."""
    path = Path(path)
    fmt = format or WRITE_SUFFIXES.get(path.suffix.lower())
    if fmt not in WRITE_SUFFIXES.values():
        msg = (
            f"cannot choose a writer for {path}: end its name in one of the suffixes {sorted(WRITE_SUFFIXES)} "
            f"(or give write_recording one of the formats {sorted(set(WRITE_SUFFIXES.values()))})"
        )
        raise ValueError(msg)
    events = check_events(events)
    if fmt == "nmnist":
        write_nmnist(path, events)
    elif fmt == "npy":
        write_npy(path, events)
    else:
        if width is None or height is None or width < 1 or height < 1:
            msg = f"writing {fmt} needs a positive sensor width and height, got {width}x{height}"
            raise ValueError(msg)
        if events.size and (int(events["x"].max()) >= width or int(events["y"].max()) >= height):
            msg = (
                f"events outside the {width}x{height} sensor: max x {int(events['x'].max())}, "
                f"max y {int(events['y'].max())}"
            )
            raise ValueError(msg)
        if fmt == "aedat3":
            write_aedat3(path, events, width, height)
        else:
            # dv-processing aborts the process unless the name ends in .aedat4.
            tmp = path.with_name(f".{path.stem}.part.aedat4")
            write_aedat4(tmp, events, width, height)
            tmp.replace(path)
