"""What the writers share: the check of the events they are given and the atomic write.

Every writer takes a validated ``EVENT_DTYPE`` array and writes atomically enough for tests and tools:
to a temporary name next to the target, renamed into place once complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE


def check_events(events: np.ndarray) -> np.ndarray:
    """``events`` as a contiguous ``EVENT_DTYPE`` array, or ``ValueError`` saying what is wrong."""
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        msg = (
            f"events must be a 1-D array of pipeline.events.EVENT_DTYPE, got "
            f"{type(events).__name__} {getattr(events, 'dtype', None)} {getattr(events, 'shape', None)}"
        )
        raise ValueError(msg)
    if events.size and int(events["p"].max()) > 1:
        msg = f"polarity must be 0 or 1, found {int(events['p'].max())}"
        raise ValueError(msg)
    return np.ascontiguousarray(events)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a ``.part`` name beside ``path``, then rename it into place (removed on failure)."""
    tmp = path.with_name(path.name + ".part")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"{path}: cannot write ({exc})"
        raise RecordingError(msg) from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through ``atomic_write``."""

    def write(p: Path) -> None:
        p.write_bytes(data)

    atomic_write(path, write)
