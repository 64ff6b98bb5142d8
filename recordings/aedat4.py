"""AEDAT 4.0 through iniVation's dv-processing (``dv.io.MonoCameraRecording`` / ``MonoCameraWriter``).

Reading: the event stream is read batch by batch with ``getNextEventBatch``; each ``dv.EventStore`` is
turned into numpy with ``EventStore.numpy()`` (fields ``timestamp`` int64, ``x``/``y`` int16,
``polarity`` int8) and copied field by field into ``EVENT_DTYPE``. Frames, IMU, triggers and other
streams are ignored (logged once per file). dv-processing raises ``RuntimeError`` on a truncated file or a
damaged file table; that becomes ``RecordingError`` naming the file.

Known limitation (dv-processing 2.0.4): a flipped byte *inside an LZ4-compressed event packet* can make
``getNextEventBatch`` loop forever while holding the GIL, so no in-process watchdog can stop it. AEDAT 4.0
packets carry no checksum we could test first. Read untrusted AEDAT 4.0 files in a separate process.

Writing: dv-processing 2.0.4 has no bulk constructor from numpy, so events are handed over as a list of
``dv.Event`` objects per packet (about 2 µs per event; writing is not a hot path).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import dv_processing as dv
import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings.formats import Recording

log = logging.getLogger(__name__)

#: Events per packet written by ``write_aedat4`` (dv-processing's recorder uses packets of this order).
WRITE_PACKET = 10_000


def _same_layout(dtype: np.dtype) -> bool:
    """True when dv-processing's event record has exactly the byte layout of ``EVENT_DTYPE``
    (int64 timestamp at 0, 16-bit x at 8, y at 10, 8-bit polarity at 12, same item size)."""
    fields = dtype.fields
    ours_fields = EVENT_DTYPE.fields
    if fields is None or ours_fields is None or dtype.itemsize != EVENT_DTYPE.itemsize:
        return False
    wanted = {"timestamp": ("t", 8), "x": ("x", 2), "y": ("y", 2), "polarity": ("p", 1)}
    for name, (ours, size) in wanted.items():
        if name not in fields:
            return False
        theirs_type, theirs_off = fields[name][:2]
        our_off = ours_fields[ours][1]
        if theirs_off != our_off or theirs_type.itemsize != size or theirs_type.kind not in "iub":
            return False
    return True


def dv_to_events(a: np.ndarray) -> np.ndarray:
    """``EVENT_DTYPE`` events from the numpy array of a ``dv.EventStore`` (fields timestamp, x, y, polarity).

    dv-processing 2.x uses the same 16-byte record layout as ``EVENT_DTYPE`` (coordinates are never
    negative and polarity is 0/1, so the signed and unsigned types hold the same bits): the array is then
    reinterpreted without a copy. Any other layout is converted field by field.
    """
    if _same_layout(a.dtype) and a.flags.c_contiguous:
        return a.view(EVENT_DTYPE)
    out = np.empty(a.shape[0], dtype=EVENT_DTYPE)
    out["t"] = a["timestamp"]
    out["x"] = a["x"]
    out["y"] = a["y"]
    out["p"] = a["polarity"]
    return out


def _concat_raw(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    dtype = parts[0].dtype
    return np.concatenate([np.ascontiguousarray(a).view(np.uint8) for a in parts]).view(dtype)


def _open(path: Path) -> dv.io.MonoCameraRecording:
    try:
        return dv.io.MonoCameraRecording(str(path))
    except RuntimeError as exc:
        raise RecordingError(
            f"{path}: dv-processing cannot open it (truncated or corrupt?): {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # dv-processing puts the source location first and the reason on the next line.
    return " ".join(line.strip() for line in text[:2]) if text else type(exc).__name__


def open_aedat4(path: Path) -> Recording:
    """An AEDAT 4.0 file's event stream."""
    rec = _open(path)
    if not rec.isEventStreamAvailable():
        raise RecordingError(f"{path}: AEDAT 4.0 file without an event stream (streams: {rec.getStreamNames()})")
    res = rec.getEventResolution()
    width, height = (int(res[0]), int(res[1])) if res is not None else (None, None)
    streams = list(rec.getStreamNames())
    others = [s for s in streams if s != "events"]
    if others:
        log.info("%s: ignoring the non-event streams %s", path, others)
    meta = {"camera": rec.getCameraName(), "streams": streams}
    first = [rec]  # the reader opened above serves the first pass; later passes open their own

    def source(batch_size: int) -> Iterator[np.ndarray]:
        reader = first.pop() if first else _open(path)
        limit = batch_size if batch_size > 0 else 1 << 62
        # dv-processing hands out small packets (a few hundred events): convert them in groups of at least
        # batch_size events, since the per-call cost of the conversion dominates for small ones.
        parts: list[np.ndarray] = []
        have = 0
        while True:
            try:
                store = reader.getNextEventBatch()
            except RuntimeError as exc:
                raise RecordingError(
                    f"{path}: dv-processing read error (truncated or corrupt?): {_first_line(exc)}"
                ) from exc
            if store is None or (have >= limit and parts):
                if parts:
                    yield dv_to_events(_concat_raw(parts))
                    parts, have = [], 0
                if store is None:
                    return
            if store.size():
                a = store.numpy()
                parts.append(a)
                have += a.shape[0]

    return Recording(path=path, format="aedat4", width=width, height=height, metadata=meta, _source=source)


def write_aedat4(path: Path, events: np.ndarray, width: int, height: int, *, camera: str = "spikestream") -> None:
    """Write ``events`` (``EVENT_DTYPE``, validated by the caller) as an AEDAT 4.0 event-only file."""
    if path.suffix.lower() != ".aedat4":
        # dv-processing 2.0.4 terminates the whole process (std::terminate) for any other suffix.
        raise ValueError(f"an AEDAT 4.0 file name must end in .aedat4, got {path}")
    config = dv.io.MonoCameraWriter.EventOnlyConfig(camera, (int(width), int(height)))
    try:
        writer = dv.io.MonoCameraWriter(str(path), config)
    except RuntimeError as exc:
        raise RecordingError(f"{path}: dv-processing cannot create it: {_first_line(exc)}") from exc
    for i in range(0, events.size, WRITE_PACKET):
        part = events[i : i + WRITE_PACKET]
        vec = dv.EventPacket.EventVector(
            list(
                map(
                    dv.Event,
                    part["t"].tolist(),
                    part["x"].tolist(),
                    part["y"].tolist(),
                    part["p"].astype(bool).tolist(),
                )
            )
        )
        writer.writeEventPacket(dv.EventPacket(vec))
    del writer  # closes the file and writes the file table
