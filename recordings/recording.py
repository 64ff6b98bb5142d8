"""``Recording``: an open event file that streams ``EVENT_DTYPE`` batches in file order, and the two
batching helpers every reader shares (``concat``, ``rebatch``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.events import EVENT_DTYPE

#: ``batch_size`` that asks a source for as few, large chunks as it can make (``Recording.read_all``).
WHOLE = 0


def _no_events(_batch_size: int) -> Iterator[np.ndarray]:
    return iter(())


@dataclass(kw_only=True)
class Recording:
    """An open event file. ``batches`` streams ``EVENT_DTYPE`` arrays in file order; ``read_all`` reads it all.

    ``metadata`` holds what the header says (chip, camera, header lines ...) and, after a complete pass
    over the events, what the decoder counted (for example EVT 3.0 clamped timestamps).
    """

    path: Path
    format: str
    width: int | None
    height: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
    _source: Callable[[int], Iterator[np.ndarray]] = field(repr=False, default=_no_events)

    def batches(self, batch_size: int = 65536) -> Iterator[np.ndarray]:
        """Batches of at most ``batch_size`` events (all but the last exactly ``batch_size``)."""
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            msg = f"batch_size must be a positive integer, got {batch_size!r}"
            raise ValueError(msg)
        return rebatch(self._source(int(batch_size)), int(batch_size))

    def read_all(self) -> np.ndarray:
        """Every event of the file as one ``EVENT_DTYPE`` array."""
        return concat(list(self._source(WHOLE)))


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate event batches by their bytes (numpy's field-wise path is slow for records)."""
    if not parts:
        return np.zeros(0, dtype=EVENT_DTYPE)
    if len(parts) == 1:
        return parts[0]
    raw = np.concatenate([np.ascontiguousarray(a).view(np.uint8) for a in parts])
    return raw.view(EVENT_DTYPE)


def rebatch(chunks: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Regroup a stream of event arrays into arrays of exactly ``batch_size`` (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for chunk in chunks:
        rest = chunk
        while rest.size:
            if not pending and rest.size >= batch_size:
                yield rest[:batch_size]
                rest = rest[batch_size:]
                continue
            take = min(batch_size - have, rest.size)
            pending.append(rest[:take])
            have += take
            rest = rest[take:]
            if have == batch_size:
                yield concat(pending)
                pending, have = [], 0
    if have:
        yield concat(pending)
