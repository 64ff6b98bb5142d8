"""Which format an event file is in, decided by its content.

Detection looks at the ``#!AER-DAT4.0`` / ``#!AER-DAT3.1`` / ``#!AER-DAT2.0`` magic lines, the numpy
``\\x93NUMPY`` magic, and Prophesee ``%`` header lines (``% evt 2.0``, ``% evt 3.0``,
``% format EVT3;...``; a ``%`` header without an EVT version is DAT). N-MNIST ``.bin`` files have no
magic, so the suffix ``.bin`` selects them.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import RecordingError
from recordings.formats.header import evt_version, read_header

#: The format names ``detect_format`` returns (and ``Recording.format`` holds).
FORMATS: tuple[str, ...] = ("nmnist", "aedat4", "aedat2", "aedat3", "evt2", "evt3", "dat", "npy")

_FORMAT_HELP = (
    "N-MNIST .bin (nmnist), AEDAT 4.0 (aedat4), AEDAT 3.1 (aedat3), AEDAT 2.0 (aedat2), "
    "Prophesee RAW EVT 2.0 (evt2) / EVT 3.0 (evt3), Prophesee DAT (dat), numpy .npy of events (npy)"
)


def detect_format(path: str | Path) -> str:
    """The format of the event file at ``path``, decided by its content (the suffix only breaks ties).

    Raises ``RecordingError`` for a missing file, a directory, or an unknown format (listing the
    supported ones).
    """
    path = Path(path)
    if path.is_dir():
        msg = (
            f"{path}: is a folder, not an event file: name one file inside it (an N-MNIST dataset folder is "
            "read whole by `spikestream info` and by a replay source's path)"
        )
        raise RecordingError(msg)
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        msg = f"{path}: cannot read ({exc})"
        raise RecordingError(msg) from exc
    if head.startswith(b"SPKLOG\x00"):
        msg = (
            f"{path}: a spikestream message log (written by a 'record' sink), not an event file: play it with "
            'type = "playback"; `spikestream info` describes it'
        )
        raise RecordingError(msg)
    if head.startswith(b"#!AER-DAT4.0"):
        return "aedat4"
    if head.startswith(b"#!AER-DAT3.1"):
        return "aedat3"
    if head.startswith(b"#!AER-DAT2.0"):
        return "aedat2"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"%"):
        header = read_header(path, b"%", end_line="end")
        version = evt_version(header)
        if version == 2:
            return "evt2"
        if version == 3:
            return "evt3"
        # A '%' first byte alone proves nothing (an N-MNIST record may start with x = 37): DAT needs at least
        # one complete text header line, and .bin keeps its N-MNIST meaning.
        if path.suffix.lower() == ".raw" or (version is not None):
            msg = f"{path} at byte 0: Prophesee RAW header without a supported EVT version (EVT 2.0 and 3.0 are)"
            raise RecordingError(msg)
        if header.lines and path.suffix.lower() != ".bin":
            return "dat"
    if path.suffix.lower() == ".bin":
        return "nmnist"
    if not head:
        msg = f"{path} at byte 0: empty file"
        raise RecordingError(msg)
    msg = f"{path} at byte 0: unknown event file format; supported: {_FORMAT_HELP}"
    raise RecordingError(msg)
