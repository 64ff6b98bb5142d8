"""Text headers of event files, and what they say: sensor sizes by chip name, Prophesee geometry and EVT
version.

Header lines (``#`` for AEDAT, ``%`` for Prophesee) must be printable ASCII; a "line" starting with the
header character but holding binary bytes is data. (An AEDAT 2.0 DAVIS address can start with the byte
``#``; jAER's own reader would swallow it.) Where a header states no sensor size, the size is ``None``,
never a guessed default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import RecordingError

#: Sensor sizes of the chips named in AEDAT 2.0 / 3.1 headers (lower-case substrings).
_CHIPS: tuple[tuple[str, int, int], ...] = (
    ("davis346", 346, 260),
    ("davis240", 240, 180),
    ("davis640", 640, 480),
    ("dvs128", 128, 128),
)

_PRINTABLE = re.compile(rb"^[\x20-\x7e\t]*\r?\n?$")


@dataclass(frozen=True, kw_only=True)
class Header:
    """The text header of a file: its lines (without the leading marker and line end) and where data starts."""

    lines: tuple[str, ...]
    data_offset: int


def read_header(path: Path, marker: bytes, *, end_line: str | None = None, limit: int = 1 << 24) -> Header:
    """Read the leading lines of ``path`` that start with ``marker`` and are printable ASCII.

    Stops at the first line that does not start with ``marker``, at a line holding non-text bytes, or
    after a line equal to ``end_line`` (compared without marker, whitespace and case).
    """
    lines: list[str] = []
    offset = 0
    step = 1 << 16
    try:
        with path.open("rb") as f:
            buf = f.read(step)
            eof = len(buf) < step
            while offset < len(buf) or not eof:
                nl = buf.find(b"\n", offset)
                if nl < 0 and not eof and len(buf) < limit:
                    more = f.read(step)
                    eof = len(more) < step
                    buf += more
                    continue
                end = len(buf) if nl < 0 else nl + 1
                line = buf[offset:end]
                if not line.startswith(marker) or not _PRINTABLE.match(line):
                    break
                offset = end
                lines.append(line[len(marker) :].decode("ascii").rstrip("\r\n"))
                if nl < 0 or (end_line is not None and lines[-1].strip().lower() == end_line):
                    break
    except OSError as exc:
        msg = f"{path}: cannot read ({exc})"
        raise RecordingError(msg) from exc
    return Header(lines=tuple(lines), data_offset=offset)


def chip_size(text: str) -> tuple[int | None, int | None]:
    """The sensor size of the chip that ``text`` names (``(None, None)`` for a chip not in ``_CHIPS``)."""
    low = text.lower()
    for name, w, h in _CHIPS:
        if name in low:
            return w, h
    return None, None


def evt_version(header: Header) -> int | None:
    """The EVT major version a Prophesee header states (``% evt 3.0``, ``% format EVT3;...``), or ``None``."""
    for line in header.lines:
        low = line.strip().lower()
        m = re.match(r"evt\s+(\d)(?:\.\d)?$", low)
        if m:
            return int(m.group(1))
        m = re.match(r"format\s+evt(\d)", low)
        if m:
            return int(m.group(1))
    return None


def prophesee_size(header: Header) -> tuple[int | None, int | None]:
    """Width and height from ``% geometry WxH``, ``% format ...;width=..;height=..`` or DAT
    ``% Width``/``% Height`` lines; ``(None, None)`` when the header does not say."""
    width = height = None
    for line in header.lines:
        low = line.strip().lower()
        m = re.match(r"geometry\s+(\d+)\s*x\s*(\d+)", low)
        if m:
            return int(m.group(1)), int(m.group(2))
        if low.startswith("format"):
            w = re.search(r"width=(\d+)", low)
            h = re.search(r"height=(\d+)", low)
            if w and h:
                return int(w.group(1)), int(h.group(1))
        m = re.match(r"(width|height)\s+(\d+)$", low)
        if m:
            if m.group(1) == "width":
                width = int(m.group(2))
            else:
                height = int(m.group(2))
    if width is not None and height is not None:
        return width, height
    return None, None
