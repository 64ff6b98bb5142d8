"""Writers: N-MNIST ``.bin``, AEDAT 3.1 (polarity packets), ``.npy``; AEDAT 4.0 lives in ``recordings.aedat4``.

Every writer takes a validated ``EVENT_DTYPE`` array and writes atomically enough for tests and tools:
to a temporary name next to the target, renamed into place once complete.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE
from recordings import kernels as K
from recordings.formats import AEDAT3_PACKET_HEADER, AEDAT3_POLARITY_EVENT

#: Polarity events per AEDAT 3.1 packet written by ``write_aedat3``.
AEDAT3_PACKET_EVENTS = 4096


def check_events(events: np.ndarray) -> np.ndarray:
    """``events`` as a contiguous ``EVENT_DTYPE`` array, or ``ValueError`` saying what is wrong."""
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise ValueError(
            f"events must be a 1-D array of pipeline.events.EVENT_DTYPE, got "
            f"{type(events).__name__} {getattr(events, 'dtype', None)} {getattr(events, 'shape', None)}"
        )
    if events.size and int(events["p"].max()) > 1:
        raise ValueError(f"polarity must be 0 or 1, found {int(events['p'].max())}")
    return np.ascontiguousarray(events)


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"{path}: cannot write ({exc})") from exc


def encode_nmnist(events: np.ndarray) -> bytes:
    """The N-MNIST bytes of ``events``: x, y inside the 34x34 sensor (the reader refuses anything else as
    corrupt), 0 <= t < 2**23."""
    events = check_events(events)
    if events.size:
        for name in ("x", "y"):
            m = int(events[name].max())
            if m >= K.NMNIST_SIZE:
                raise ValueError(
                    f"N-MNIST files hold a {K.NMNIST_SIZE}x{K.NMNIST_SIZE} sensor: found {name} = {m}; crop or "
                    "downsample the events first"
                )
        t_min, t_max = int(events["t"].min()), int(events["t"].max())
        if t_min < 0 or t_max >= 1 << 23:
            raise ValueError(
                f"N-MNIST timestamps are 23-bit microseconds [0, {(1 << 23) - 1}]: found [{t_min}, {t_max}]; "
                "shift or cut the events first"
            )
    out = np.empty(events.size * 5, dtype=np.uint8)
    K.nmnist_encode(events["t"], events["x"], events["y"], events["p"], out)
    return out.tobytes()


def write_nmnist(path: Path, events: np.ndarray) -> None:
    """Write an N-MNIST ``.bin`` file (see ``encode_nmnist`` for the limits)."""
    data = encode_nmnist(events)
    _atomic(path, lambda p: _write_bytes(p, data))


def write_npy(path: Path, events: np.ndarray) -> None:
    """Write ``events`` as a ``.npy`` file of ``EVENT_DTYPE``."""
    events = check_events(events)

    def write(p: Path) -> None:
        with p.open("wb") as f:
            np.save(f, events, allow_pickle=False)

    _atomic(path, write)


def encode_aedat3(
    events: np.ndarray,
    width: int,
    height: int,
    *,
    packet_events: int = AEDAT3_PACKET_EVENTS,
    source: str | None = None,
    extra_packets: bool = False,
) -> bytes:
    """The AEDAT 3.1 bytes of ``events``: header lines, then polarity packets of ``packet_events`` events.

    Timestamps must be >= 0 and fit in 62 bits; x, y must fit in 15 bits and inside ``width`` x ``height``.
    Each packet's ``eventTSOverflow`` is the high part (t >> 31) of its events, so a packet never spans an
    overflow boundary. With ``extra_packets`` a special-event packet (type 0) is written before each
    polarity packet (for tests of the "other packet types are skipped" rule).
    """
    events = check_events(events)
    if width < 1 or height < 1 or width > 0x7FFF or height > 0x7FFF:
        raise ValueError(f"AEDAT 3.1 sensor size must be within 1..32767, got {width}x{height}")
    if packet_events < 1:
        raise ValueError(f"packet_events must be >= 1, got {packet_events}")
    if events.size:
        if int(events["t"].min()) < 0:
            raise ValueError(f"AEDAT 3.1 timestamps must be >= 0, found {int(events['t'].min())}")
        if int(events["x"].max()) >= width or int(events["y"].max()) >= height:
            raise ValueError(
                f"events outside the {width}x{height} sensor: max x {int(events['x'].max())}, "
                f"max y {int(events['y'].max())}"
            )
    name = source or f"spikestream {width}x{height}"
    head = (
        f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {name}\r\n#Sensor-Size: {width}x{height}\r\n#!END-HEADER\r\n"
    ).encode("ascii")
    parts = [head]
    t = events["t"]
    high = t >> 31
    # Packet boundaries: every packet_events events and wherever the overflow part changes.
    cuts = set(range(0, events.size, packet_events))
    cuts.update((np.flatnonzero(np.diff(high)) + 1).tolist())
    bounds = [*sorted(cuts), events.size]
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        part = events[a:b]
        if extra_packets:
            special = np.zeros(1, dtype=AEDAT3_PACKET_HEADER)
            special[0] = (0, 1, 8, 4, int(high[a]), 2, 2, 2)
            parts.append(special.tobytes() + np.zeros(16, dtype=np.uint8).tobytes())
        ph = np.zeros(1, dtype=AEDAT3_PACKET_HEADER)
        ph[0] = (AEDAT3_POLARITY_EVENT, 1, 8, 4, int(high[a]), b - a, b - a, b - a)
        rec = np.empty(b - a, dtype=[("data", "<u4"), ("ts", "<i4")])
        rec["data"] = (
            1
            | (part["p"].astype(np.uint32) << 1)
            | (part["y"].astype(np.uint32) << 2)
            | (part["x"].astype(np.uint32) << 17)
        )
        rec["ts"] = (part["t"] & 0x7FFFFFFF).astype(np.int32)
        parts.append(ph.tobytes() + rec.tobytes())
    return b"".join(parts)


def write_aedat3(path: Path, events: np.ndarray, width: int, height: int, **kwargs: object) -> None:
    """Write an AEDAT 3.1 file of polarity packets (see ``encode_aedat3``)."""
    data = encode_aedat3(events, width, height, **kwargs)  # type: ignore[arg-type]
    _atomic(path, lambda p: _write_bytes(p, data))
