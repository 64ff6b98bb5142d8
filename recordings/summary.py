"""``info``: what an event file or an N-MNIST dataset folder holds, as a JSON-able summary."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from recordings.datasets.nmnist import NMnistDataset
from recordings.files import open_recording


def info(path: str | Path) -> dict[str, Any]:
    """A JSON-able summary of an event file or an N-MNIST dataset folder.

    Keys: path, format, events, t_first, t_last (first and last event in file order), duration_us
    (t_last - t_first), width, height (``None`` when unknown), on, off, metadata; a dataset folder also has
    samples, labels (per-label counts) and splits (per-split counts), with t_first/t_last the earliest
    first and latest last timestamp over its samples.
    """
    path = Path(path)
    if path.is_dir():
        return _jsonable_dict(_dataset_summary(path))
    rec = open_recording(path)
    summary = _summarise(rec.batches(1 << 20))
    return _jsonable_dict(
        {
            "path": str(path),
            "format": rec.format,
            **summary,
            "width": rec.width,
            "height": rec.height,
            "metadata": rec.metadata,
        }
    )


def _dataset_summary(path: Path) -> dict[str, Any]:
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
    return {
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


def _summarise(batches: Iterable[np.ndarray]) -> dict[str, Any]:
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


def _jsonable_dict(d: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _jsonable(v) for k, v in d.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return _jsonable_dict(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return value
