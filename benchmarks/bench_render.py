"""Render speed of ``spikestream render``: frames per second and real-time factor, to MP4 and to GIF, and
of the drawing alone (binning, painting, overlay; no video encoder), best of several runs.

    python benchmarks/bench_render.py [--data DIR] [--repeat N] [--json FILE]

Recording: ``aedat2/pyaedattools_IMU_rotDisk.aedat`` (DAVIS240C, 374 k events over 3.2 s), at 30 frames/s
and speed 1, drawn at scale 2 (480 x 386 px). Needs the real recordings ($SPIKESTREAM_DATA or
../shared/recordings). The first run of each case warms up (numba compiles or loads its cache).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import data_root
from recordings.video.frames import Timing, frames
from recordings.video.kernel import paint
from recordings.video.overlay import OFF, ON, Layout, background, draw_strip
from recordings.video.render import RenderParams, open_source, render

REPO = Path(__file__).resolve().parent.parent
RECORDING = "aedat2/pyaedattools_IMU_rotDisk.aedat"


def draw_only(path: Path, params: RenderParams) -> int:
    """Frames drawn (bin, paint, time strip) without a video encoder; returns the frame count."""
    source = open_source(path)
    layout = Layout(sensor_width=source.width, sensor_height=source.height, scale=params.scale)
    base = background(layout)
    canvas = base.copy()
    oy, ox = layout.origin
    batches = list(source.batches)
    t0 = int(batches[0]["t"][0])
    n = 0
    for frame in frames(batches, source.width, source.height, Timing(t0=t0, step=params.step_us, window=0)):
        np.copyto(canvas, base)
        paint(frame.counts, params.scale, canvas, oy, ox, ON, OFF)
        draw_strip(canvas, (frame.t_end - t0) / 1e6, 2, params.speed, frame.events * params.fps)
        n += 1
    return n


def main() -> None:
    """Measure each case and print (or write) the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="recordings folder (default: $SPIKESTREAM_DATA)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    path = Path(args.data or data_root(REPO)) / RECORDING
    params = RenderParams(scale=2)
    figures: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "recording": RECORDING}
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("draw", "mp4", "gif"):
            best = float("inf")
            n = 0
            for _ in range(args.repeat + 1):
                start = time.perf_counter()
                if case == "draw":
                    n = draw_only(path, params)
                else:
                    n = render(open_source(path), Path(tmp) / f"bench.{case}", params)["frames"]
                best = min(best, time.perf_counter() - start)
            video_s = n / params.fps
            figures[case] = {"frames": n, "frames_per_s": n / best, "realtime_factor": video_s / best}
            print(f"{case:5s} {n} frames in {best:.3f} s: {n / best:.0f} frames/s, {video_s / best:.1f}x real time")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
