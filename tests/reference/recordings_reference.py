"""Slow, obviously correct decoders of the event formats, written from the format descriptions (SOURCES.md,
OpenEB's EVT 2.0/3.0 pages, the AEDAT 2.0/3.1 specifications) with one Python step per word.

They share no code with ``recordings``: header parsing, bit fields, unwrapping and the EVT 3.0 clamp rule
are restated here. Each returns a list of (t, x, y, p) tuples, plus the sensor size where the header says.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

Event = tuple[int, int, int, int]


def checksum(t, x, y, p) -> str:  # type: ignore[no-untyped-def]
    """sha256 over the four columns as little-endian int64, one column after the other."""
    h = hashlib.sha256()
    for col in (t, x, y, p):
        h.update(np.asarray(col, dtype="<i8").tobytes())
    return h.hexdigest()


def checksum_events(events: list[Event]) -> str:
    cols = list(zip(*events, strict=True)) if events else [(), (), (), ()]
    return checksum(*cols)


def _header(data: bytes, marker: bytes, end: bytes | None = None) -> int:
    """Offset of the first byte after the text header (printable lines starting with ``marker``)."""
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == marker:
        nl = data.find(b"\n", pos)
        nl = len(data) - 1 if nl < 0 else nl
        line = data[pos : nl + 1]
        if any((c < 0x20 and c not in (9, 10, 13)) or c > 0x7E for c in line):
            break
        pos = nl + 1
        if end is not None and line.strip().lower() == end:
            break
    return pos


def nmnist(data: bytes) -> list[Event]:
    out = []
    extra = 0
    for i in range(0, len(data) - len(data) % 5, 5):
        value = int.from_bytes(data[i : i + 5], "big")
        x = value >> 32
        y = (value >> 24) & 0xFF
        p = (value >> 23) & 1
        t = value & ((1 << 23) - 1)
        if y == 240:
            extra += 8192
            continue
        out.append((t + extra, x, y, p))
    return out


def aedat2(data: bytes) -> tuple[list[Event], int | None, int | None]:
    start = _header(data, b"#")
    text = data[:start].decode("ascii")
    chip = None
    for line in text.splitlines():
        if line.startswith("# AEChip:"):
            chip = line.split(":", 1)[1].strip().lower()
    pairs = [struct.unpack(">II", data[i : i + 8]) for i in range(start, len(data) - 7, 8)]
    dvs128 = all(a < 65536 for a, _ in pairs) if chip is None else "dvs128" in chip
    if dvs128:
        w = h = 128
    elif "davis240" in chip:  # type: ignore[operator]
        w, h = 240, 180
    elif "davis346" in chip:  # type: ignore[operator]
        w, h = 346, 260
    else:
        msg = f"reference knows no chip {chip}"
        raise ValueError(msg)
    out = []
    wraps = 0
    prev = None
    for a, ts in pairs:
        if prev is not None and prev - ts > 2**31:
            wraps += 1
        prev = ts
        t = ts + wraps * 2**32
        if dvs128:
            if a & 0x8000:
                continue
            x = (a >> 1) & 127
            y = (a >> 8) & 127
            p = 0 if a & 1 else 1
        else:
            if a & 0x80000000 or a & 0x400:
                continue
            y = (a >> 22) & 511
            x = (a >> 12) & 1023
            p = (a >> 11) & 1
        out.append((t, x, h - 1 - y, p))
    return out, w, h


def aedat3(data: bytes) -> list[Event]:
    end = data.find(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    pos = end
    out = []
    while pos < len(data):
        etype, _src, size, _tsoff, overflow, capacity, number, _valid = struct.unpack("<hhiiiiii", data[pos : pos + 28])
        body = pos + 28
        if etype == 1:
            for k in range(number):
                d, ts = struct.unpack("<Ii", data[body + k * size : body + k * size + 8])
                if d & 1:
                    out.append(((overflow << 31) | ts, (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1))
        pos = body + size * capacity
    return out


def evt2(data: bytes) -> list[Event]:
    start = _header(data, b"%", b"% end")
    out = []
    high = None
    wraps = 0
    for i in range(start, len(data) - 3, 4):
        (w,) = struct.unpack("<I", data[i : i + 4])
        kind = w >> 28
        if kind == 8:
            value = w & 0x0FFFFFFF
            if high is not None and value < high:
                wraps += 1
            high = value
        elif kind in (0, 1) and high is not None:
            t = ((high + wraps * 2**28) << 6) | ((w >> 22) & 63)
            out.append((t, (w >> 11) & 2047, w & 2047, kind))
    return out


def evt3(data: bytes) -> tuple[list[Event], int, int]:
    """Returns the events, the number of backward TIME_LOW words and of clamped events."""
    start = _header(data, b"%", b"% end")
    out: list[Event] = []
    high = None
    wraps = 0
    low = 0
    y = 0
    base = 0
    pol = 0
    last = None
    back = clamped = 0

    def emit(x: int, p: int) -> None:
        nonlocal last, clamped
        t = ((high + wraps * 4096) << 12) | low  # type: ignore[operator]
        if last is not None and t < last:
            t = last
            clamped += 1
        last = t
        out.append((t, x, y, p))

    for i in range(start, len(data) - 1, 2):
        (w,) = struct.unpack("<H", data[i : i + 2])
        kind, v = w >> 12, w & 0xFFF
        if kind == 0x8:
            if high is not None and v < high:
                wraps += 1
            if v != high:
                low = 0
            high = v
        elif kind == 0x6:
            if high is not None and v < low:
                back += 1
            low = v
        elif kind == 0x0:
            y = v & 0x7FF
        elif kind == 0x2:
            if high is not None:
                emit(v & 0x7FF, v >> 11)
        elif kind == 0x3:
            base, pol = v & 0x7FF, v >> 11
        elif kind in (0x4, 0x5):
            n = 12 if kind == 0x4 else 8
            if high is not None:
                for b in range(n):
                    if v & (1 << b):
                        emit(base + b, pol)
            base += n
    return out, back, clamped


def dat(data: bytes) -> list[Event]:
    start = _header(data, b"%") + 2
    out = []
    prev = None
    wraps = 0
    for i in range(start, len(data) - 7, 8):
        ts, w = struct.unpack("<II", data[i : i + 8])
        if prev is not None and prev - ts > 2**31:
            wraps += 1
        prev = ts
        out.append((ts + wraps * 2**32, w & 0x3FFF, (w >> 14) & 0x3FFF, (w >> 28) & 0xF))
    return out


def decode_file(path: Path, fmt: str) -> list[Event]:
    data = path.read_bytes()
    if fmt == "nmnist":
        return nmnist(data)
    if fmt == "aedat2":
        return aedat2(data)[0]
    if fmt == "aedat3":
        return aedat3(data)
    if fmt == "evt2":
        return evt2(data)
    if fmt == "evt3":
        return evt3(data)[0]
    if fmt == "dat":
        return dat(data)
    raise ValueError(fmt)
