"""Reads files under an address-space limit and says, one JSON line per file, what each read did.

Run by test_fuzz.py as ``python tests/fuzz_child.py LIMIT_BYTES LIST_FILE``; LIST_FILE holds one
``kind<TAB>path`` per line, kind one of ``recording``, ``log``, ``wire``. The limit is set before numpy,
numba and the readers load, so everything they allocate counts. A ``MemoryError`` or any exception other
than a ``SpikestreamError`` is reported as a crash, and the next file is read: the parent fails the test.
"""

from __future__ import annotations

import json
import resource
import struct
import sys
import time


def _read(kind: str, path: str) -> str:
    from pathlib import Path

    if kind == "recording":
        import recordings

        return f"read {recordings.open_recording(Path(path)).read_all().size}"
    if kind == "log":
        from recordings.messages import read_messages

        return f"read {sum(1 for _ in read_messages(path))}"
    from pipeline import wire

    raw = Path(path).read_bytes()
    frames, pos = [], 0
    while pos + 4 <= len(raw):
        (n,) = struct.unpack_from("<I", raw, pos)
        frames.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return f"read {wire.decode(frames).count}"


def main() -> int:
    """Set the limit, then read every file of the list."""
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from pipeline.errors import SpikestreamError

    with open(sys.argv[2]) as f:
        jobs = [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]
    for kind, path in jobs:
        start = time.perf_counter()
        try:
            outcome, message = _read(kind, path), ""
        except SpikestreamError as exc:
            outcome, message = "error", str(exc)
        except BaseException as exc:  # noqa: BLE001 - MemoryError above all: the crash this run looks for
            outcome, message = "crash", f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        line = {"kind": kind, "path": path, "outcome": outcome, "message": message, "s": seconds}
        sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
