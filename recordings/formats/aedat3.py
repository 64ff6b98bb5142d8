"""AEDAT 3.1 files: ``#`` header lines up to ``#!END-HEADER``, then packets, read and written.

A packet is a 28-byte header (``AEDAT3_PACKET_HEADER``) and ``eventCapacity`` events of ``eventSize``
bytes. Polarity-event packets are decoded; every other packet type is skipped (and counted in
``metadata``). A polarity event is a little-endian uint32 (bit 0 valid, bit 1 polarity, bits 2-16 y,
bits 17-31 x) and an int32 timestamp whose high part is the packet's ``eventTSOverflow``.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.events import EVENT_DTYPE
from recordings.formats.header import chip_size, read_header
from recordings.formats.kernels import ERR_BAD_ADDRESS, ERR_BAD_PACKET
from recordings.formats.kernels.aedat import aedat3_polarity_decode
from recordings.formats.reading import KERNEL_ERRORS, fail, memmap
from recordings.formats.writing import atomic_write_bytes, check_events
from recordings.recording import Recording

log = logging.getLogger(__name__)

AEDAT3_PACKET_HEADER = np.dtype(
    [
        ("eventType", "<i2"),
        ("eventSource", "<i2"),
        ("eventSize", "<i4"),
        ("eventTSOffset", "<i4"),
        ("eventTSOverflow", "<i4"),
        ("eventCapacity", "<i4"),
        ("eventNumber", "<i4"),
        ("eventValid", "<i4"),
    ]
)
AEDAT3_POLARITY_EVENT = 1

#: Polarity events per AEDAT 3.1 packet written by ``write_aedat3``.
AEDAT3_PACKET_EVENTS = 4096


def open_aedat3(path: Path) -> Recording:
    """An AEDAT 3.1 file: polarity-event packets are decoded, every other packet type is skipped."""
    header = read_header(path, b"#", end_line="!end-header")
    if not header.lines or header.lines[-1].strip().lower() != "!end-header":
        raise fail(path, header.data_offset, "AEDAT 3.1 header without '#!END-HEADER' line (truncated?)")
    width = height = None
    source_name = None
    for line in header.lines:
        m = re.match(r"\s*Source\s+\d+:\s*(.+)$", line)
        if m:
            source_name = m.group(1).strip()
            width, height = chip_size(source_name)
        m = re.match(r"\s*Sensor-Size:\s*(\d+)\s*x\s*(\d+)", line)
        if m:
            width, height = int(m.group(1)), int(m.group(2))
    meta: dict[str, object] = {"source": source_name, "data_offset": header.data_offset}
    hsize = AEDAT3_PACKET_HEADER.itemsize

    def source(_batch_size: int) -> Iterator[np.ndarray]:
        # Packets are the natural chunks; Recording.batches regroups them.
        buf = memmap(path, header.data_offset)
        pos = 0
        skipped: dict[int, int] = {}
        while pos < buf.size:
            if pos + hsize > buf.size:
                raise fail(path, header.data_offset + pos, "truncated packet header")
            ph = buf[pos : pos + hsize].view(AEDAT3_PACKET_HEADER)[0]
            etype, esize = int(ph["eventType"]), int(ph["eventSize"])
            cap, number = int(ph["eventCapacity"]), int(ph["eventNumber"])
            if esize <= 0 or cap < 0 or number < 0 or number > cap or etype < 0:
                raise fail(path, header.data_offset + pos, KERNEL_ERRORS[ERR_BAD_PACKET])
            end = pos + hsize + esize * cap
            if end > buf.size:
                raise fail(path, header.data_offset + pos, f"truncated packet: needs {esize * cap} payload bytes")
            if etype == AEDAT3_POLARITY_EVENT:
                if esize < 8:
                    raise fail(path, header.data_offset + pos, f"polarity event size {esize} < 8")
                out = np.empty(number, dtype=EVENT_DTYPE)
                n = aedat3_polarity_decode(buf, pos + hsize, number, esize, int(ph["eventTSOverflow"]), out)
                if width is not None and n and (out["x"][:n].max() >= width or out["y"][:n].max() >= height):
                    raise fail(path, header.data_offset + pos, KERNEL_ERRORS[ERR_BAD_ADDRESS])
                if n:
                    yield out[:n]
            else:
                skipped[etype] = skipped.get(etype, 0) + 1
            pos = end
        if skipped:
            log.info("%s: skipped packets of event types %s (only polarity events are read)", path, skipped)
            meta["skipped_packets"] = {str(k): v for k, v in sorted(skipped.items())}

    return Recording(path=path, format="aedat3", width=width, height=height, metadata=meta, _source=source)


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
        msg = f"AEDAT 3.1 sensor size must be within 1..32767, got {width}x{height}"
        raise ValueError(msg)
    if packet_events < 1:
        msg = f"packet_events must be >= 1, got {packet_events}"
        raise ValueError(msg)
    if events.size:
        if int(events["t"].min()) < 0:
            msg = f"AEDAT 3.1 timestamps must be >= 0, found {int(events['t'].min())}"
            raise ValueError(msg)
        if int(events["x"].max()) >= width or int(events["y"].max()) >= height:
            msg = (
                f"events outside the {width}x{height} sensor: max x {int(events['x'].max())}, "
                f"max y {int(events['y'].max())}"
            )
            raise ValueError(msg)
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


def write_aedat3(path: Path, events: np.ndarray, width: int, height: int) -> None:
    """Write an AEDAT 3.1 file of polarity packets (see ``encode_aedat3``)."""
    atomic_write_bytes(path, encode_aedat3(events, width, height))
