"""Decode throughput of the recording readers, in million events per second (best of several runs).

    python benchmarks/bench_recordings.py [--data DIR] [--repeat N] [--json FILE]

Cases: the N-MNIST folder (850 files, scanning excluded, opening and reading each file included), one
large N-MNIST-format file (about 5 M events, written to a temporary folder), AEDAT 4.0 through our reader
against dv-processing's own reader into numpy (same run, same files), AEDAT 2.0 (DAVIS240C), Prophesee
EVT 2.0 / EVT 3.0, and writing and reading a message log (``record`` / ``playback``).
Needs the real recordings ($SPIKESTREAM_DATA or ../shared/recordings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import recordings
from pipeline.config import data_root
from pipeline.events import make_events
from pipeline.message import events_message
from recordings.messages import MessageLogWriter, read_messages

REPO = Path(__file__).resolve().parent.parent


def best_of(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Fastest wall time of ``repeat`` runs of ``fn`` (after one warm-up run) and the events it returned."""
    n = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t0)
    return min(times), n


def dv_read(path: Path) -> int:
    import dv_processing as dv

    reader = dv.io.MonoCameraRecording(str(path))
    parts = []
    while (store := reader.getNextEventBatch()) is not None:
        parts.append(store.numpy())
    # Concatenate by bytes: numpy's field-wise path for records would make the baseline look slow.
    return int(np.concatenate([a.view(np.uint8) for a in parts]).view(parts[0].dtype).size)


def read_all_size(path: Path) -> int:
    """Events in the recording at ``path``, read whole by our readers."""
    return int(recordings.open_recording(path).read_all().size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=data_root(REPO))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--large-events", type=int, default=5_000_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    data: Path = args.data
    rows: list[dict[str, Any]] = []

    def record(case: str, seconds: float, events: int, note: str = "") -> None:
        rows.append(
            {"case": case, "events": events, "seconds": seconds, "mev_per_s": events / seconds / 1e6, "note": note}
        )

    ds = recordings.NMnistDataset(data / "nmnist")
    t, n = best_of(lambda: sum(ds.load(i).size for i in range(len(ds))), args.repeat)
    record("nmnist folder (850 files)", t, n, "target >= 20")

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        m: int = args.large_events
        events = make_events(
            np.sort(rng.integers(0, 1 << 23, m)), rng.integers(0, 34, m), rng.integers(0, 34, m), rng.integers(0, 2, m)
        )
        big = Path(tmp) / "large.bin"
        recordings.write_recording(big, events, 34, 34)
        t, n = best_of(partial(read_all_size, big), args.repeat)
        record("nmnist large file read_all", t, n, "target >= 100")
        t, n = best_of(lambda: sum(b.size for b in recordings.open_recording(big).batches(65536)), args.repeat)
        record("nmnist large file batches(65536)", t, n)

        # message logs (record sink / playback source): the same events as 2,000-event messages
        messages = [events_message(events[i : i + 2000], 34, 34) for i in range(0, m, 2000)]
        logs = iter(range(1 << 30))

        def write_log() -> int:
            path = Path(tmp) / f"log{next(logs)}.spklog"
            writer = MessageLogWriter(path)
            for msg in messages:
                writer.write(msg)
            writer.close()  # includes the fsync a checkpoint does
            return m

        t, n = best_of(write_log, args.repeat)
        record("message log write (2,000-event messages)", t, n)
        t, n = best_of(lambda: sum(msg.count for msg in read_messages(Path(tmp) / "log0.spklog")), args.repeat)
        record("message log read", t, n)

    for name in ("aedat4/tonic_sample.aedat4", "aedat4/faery_davis346.aedat4"):
        path = data / name
        t_dv, n_dv = best_of(partial(dv_read, path), args.repeat)
        t_us, n_us = best_of(partial(read_all_size, path), args.repeat)
        record(f"{name} dv-processing reader", t_dv, n_dv)
        record(f"{name} ours", t_us, n_us, f"{t_dv / t_us:.2f}x dv-processing (target >= 0.8)")

    for name, note in (
        ("aedat2/pyaedattools_IMU_rotDisk.aedat", ""),
        ("aedat2/jaer_MovingDarkBox.aedat", ""),
        ("evt/expelliarmus_evt2_sample.raw", "target >= 50"),
        ("evt/expelliarmus_evt3_sample.raw", "target >= 50"),
    ):
        t, n = best_of(partial(read_all_size, data / name), args.repeat)
        record(name, t, n, note)

    machine = f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}, numpy {np.__version__}"
    print(f"recordings decode throughput ({machine}; best of {args.repeat})")
    print(f"{'case':52s} {'events':>10s} {'ms':>9s} {'Mev/s':>8s}  note")
    for r in rows:
        print(
            f"{r['case']:52s} {r['events']:>10,d} {float(r['seconds']) * 1e3:9.2f} "
            f"{float(r['mev_per_s']):8.1f}  {r['note']}"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "repeat": args.repeat, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
