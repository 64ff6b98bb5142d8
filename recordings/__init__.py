"""Event files: readers, writers, format detection, N-MNIST dataset folders, and ``info``/``convert``.

Formats (``Recording.format``): ``nmnist`` (N-MNIST .bin), ``aedat4`` (``recordings.aedat4``; written
through dv-processing), ``aedat3`` (AEDAT 3.1), ``aedat2`` (jAER), ``evt2``/``evt3`` (Prophesee RAW),
``dat`` (Prophesee DAT), ``npy`` (numpy array of ``pipeline.events.EVENT_DTYPE``). Conventions and
decisions: ``recordings.formats``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.formats import FORMATS, Recording, detect_format
from recordings.nmnist import NMnistDataset, NMnistSample

__all__ = [
    "FORMATS",
    "WRITE_SUFFIXES",
    "NMnistDataset",
    "NMnistSample",
    "Recording",
    "convert",
    "detect_format",
    "info",
    "open_recording",
    "sensor_size",
    "write_recording",
]

log = logging.getLogger(__name__)

#: Writers chosen by suffix (``write_recording``); ``format=`` overrides the suffix.
WRITE_SUFFIXES = {".aedat4": "aedat4", ".bin": "nmnist", ".npy": "npy", ".aedat3": "aedat3"}


def open_recording(path: str | Path) -> Recording:
    """Open the event file at ``path`` (format detected from its content)."""
    from recordings import formats as F

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "nmnist":
        return F.open_nmnist(path)
    if fmt == "aedat2":
        return F.open_aedat2(path)
    if fmt == "aedat3":
        return F.open_aedat3(path)
    if fmt == "evt2":
        return F.open_evt(path, 2)
    if fmt == "evt3":
        return F.open_evt(path, 3)
    if fmt == "dat":
        return F.open_dat(path)
    if fmt == "npy":
        return F.open_npy(path)
    from recordings.aedat4 import open_aedat4

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
    from recordings import writers as W

    path = Path(path)
    fmt = format or WRITE_SUFFIXES.get(path.suffix.lower())
    if fmt not in WRITE_SUFFIXES.values():
        raise ValueError(
            f"cannot choose a writer for {path}: use one of the suffixes {sorted(WRITE_SUFFIXES)} "
            f"or format= one of {sorted(set(WRITE_SUFFIXES.values()))}"
        )
    events = W.check_events(events)
    if fmt == "nmnist":
        W.write_nmnist(path, events)
    elif fmt == "npy":
        W.write_npy(path, events)
    else:
        if width is None or height is None or width < 1 or height < 1:
            raise ValueError(f"writing {fmt} needs a positive sensor width and height, got {width}x{height}")
        if events.size and (int(events["x"].max()) >= width or int(events["y"].max()) >= height):
            raise ValueError(
                f"events outside the {width}x{height} sensor: max x {int(events['x'].max())}, "
                f"max y {int(events['y'].max())}"
            )
        if fmt == "aedat3":
            W.write_aedat3(path, events, width, height)
        else:
            from recordings.aedat4 import write_aedat4

            # dv-processing aborts the process unless the name ends in .aedat4.
            tmp = path.with_name(f".{path.stem}.part.aedat4")
            write_aedat4(tmp, events, width, height)
            tmp.replace(path)


def _summarise(batches: Any) -> dict[str, Any]:
    n = on = 0
    t_first = t_last = None
    for b in batches:
        if not b.size:
            continue
        if t_first is None:
            t_first = int(b["t"][0])
        t_last = int(b["t"][-1])
        n += int(b.size)
        on += int(np.count_nonzero(b["p"]))
    return {
        "events": n,
        "t_first": t_first,
        "t_last": t_last,
        "duration_us": (t_last - t_first) if t_first is not None and t_last is not None else 0,
        "on": on,
        "off": n - on,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def info(path: str | Path) -> dict[str, Any]:
    """A JSON-able summary of an event file or an N-MNIST dataset folder.

    Keys: path, format, events, t_first, t_last (first and last event in file order), duration_us
    (t_last - t_first), width, height (``None`` when unknown), on, off, metadata; a dataset folder also has
    samples, labels (per-label counts) and splits (per-split counts), with t_first/t_last the earliest
    first and latest last timestamp over its samples.
    """
    path = Path(path)
    if path.is_dir():
        ds = NMnistDataset(path)
        total = on = 0
        firsts, lasts = [], []
        for i in range(len(ds)):
            ev = ds.load(i)
            total += ev.size
            on += int(np.count_nonzero(ev["p"]))
            if ev.size:
                firsts.append(int(ev["t"][0]))
                lasts.append(int(ev["t"][-1]))
        t_first = min(firsts) if firsts else None
        t_last = max(lasts) if lasts else None
        return _jsonable(
            {
                "path": str(path),
                "format": "nmnist",
                "events": total,
                "t_first": t_first,
                "t_last": t_last,
                "duration_us": (t_last - t_first) if t_first is not None and t_last is not None else 0,
                "width": ds.width,
                "height": ds.height,
                "on": on,
                "off": total - on,
                "samples": len(ds),
                "labels": ds.label_counts(),
                "splits": ds.split_counts(),
                "metadata": {},
            }
        )
    rec = open_recording(path)
    summary = _summarise(rec.batches(1 << 20))
    return _jsonable(
        {
            "path": str(path),
            "format": rec.format,
            **summary,
            "width": rec.width,
            "height": rec.height,
            "metadata": rec.metadata,
        }
    )


def convert(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Convert the event file ``src`` to ``dst`` (writer chosen by the suffix of ``dst``); returns ``info(dst)``.

    When ``src`` does not state its sensor size and the target format needs one, the size is taken as
    (max x + 1, max y + 1) of the events and logged.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"convert: source and destination are the same file {src}")
    if dst.exists():  # swapped arguments must not clobber a recording
        raise RecordingError(f"{dst}: already exists; convert never replaces a file (remove it or choose another name)")
    rec = open_recording(src)
    events = rec.read_all()
    width, height = sensor_size(rec, events)
    if (width, height) != (rec.width, rec.height):
        log.info("%s states no sensor size; using %dx%d from its events", src, width, height)
    if events.dtype != EVENT_DTYPE:  # pragma: no cover - readers always convert
        raise RecordingError(f"{src}: reader returned {events.dtype}")
    write_recording(dst, events, width, height)
    return info(dst)
