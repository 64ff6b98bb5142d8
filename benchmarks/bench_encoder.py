"""Encoder throughput: DeltaEncoder (frames/s, events/s), EventTransform (events/s), saccade digits
(samples/s). Run: ``python benchmarks/bench_encoder.py [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import platform
import time

import cv2
import numpy as np

from nodes.encoder import DeltaEncoder, EventTransform, TransformParams
from nodes.sources.synthesis.font_digits import render_font_digits
from nodes.sources.synthesis.saccade import saccade_stream
from pipeline.events import make_events


def natural_frames(width: int, height: int, n: int, seed: int) -> np.ndarray:
    """A smooth random texture panned along a random walk (sub-pixel), with a little sensor noise."""
    rng = np.random.default_rng(seed)
    big: np.ndarray = rng.uniform(0, 255, (height + 64, width + 64)).astype(np.float32)
    big = cv2.GaussianBlur(big, (0, 0), 6.0)
    big = (big - big.min()) / (big.max() - big.min()) * 230 + 10
    pos = np.cumsum(rng.normal(0, 0.7, (n, 2)), axis=0) + 32
    pos = np.clip(pos, 0, 63)
    out = np.empty((n, height, width), dtype=np.uint8)
    for i, (dx, dy) in enumerate(pos):
        m = np.array([[1, 0, -dx], [0, 1, -dy]], dtype=np.float32)
        f = cv2.warpAffine(big, m, (width, height), flags=cv2.INTER_LINEAR)
        out[i] = np.clip(f + rng.normal(0, 1.0, f.shape), 0, 255).astype(np.uint8)
    return out


def bench_delta(width: int, height: int, n: int = 200) -> dict[str, float]:
    frames = natural_frames(width, height, n, seed=0)
    DeltaEncoder(width, height).encode(frames[0], 0)  # compile
    dt = float("inf")
    for _ in range(3):  # best of 3: the VM is shared
        enc = DeltaEncoder(width, height)
        events = 0
        t = time.perf_counter()
        for i in range(n):
            events += enc.encode(frames[i], i * 1000).size
        dt = min(dt, time.perf_counter() - t)
    return {"frames_per_s": n / dt, "events_per_s": events / dt, "events_per_frame": events / (n - 1)}


def bench_transform(n: int = 2_000_000) -> dict[str, float]:
    rng = np.random.default_rng(1)
    ev = make_events(np.sort(rng.integers(0, n // 4, n)), rng.integers(0, 346, n), rng.integers(0, 260, n),
                     rng.integers(0, 2, n))  # fmt: skip
    params = TransformParams(in_width=346, in_height=260, crop=(13, 10, 320, 240), out_width=64, out_height=48,
                             ba_window_us=2000, refractory_us=100)  # fmt: skip
    EventTransform(params)(ev[:100])
    tr = EventTransform(params)
    t = time.perf_counter()
    for a in range(0, n, 65536):
        tr(ev[a : a + 65536])
    dt = time.perf_counter() - t
    return {"events_per_s": n / dt, "kept_fraction": tr.counters()["out"] / n}


def bench_saccade(n: int = 1000) -> dict[str, float]:
    t = time.perf_counter()
    images, labels = render_font_digits(n, seed=0)
    t_font = time.perf_counter() - t
    next(saccade_stream(images[:2], labels[:2], seed=0))  # compile
    dt = float("inf")
    for _ in range(3):  # best of 3: the VM is shared
        t = time.perf_counter()
        chunks = list(saccade_stream(images, labels, seed=0, samples_per_chunk=64))
        dt = min(dt, time.perf_counter() - t)
    events = 0
    counts = []
    first_frame = 0
    for ev, lab in chunks:
        events += ev.size
        edges = np.searchsorted(ev["t"], lab["t"], side="right")
        counts.extend(np.diff(np.append(edges, ev.size)).tolist())
        first_frame += int(np.isin((ev["t"] - 1) // 1000, lab["t"] // 1000).sum())
    c = np.asarray(counts)
    return {
        "samples_per_s": n / dt,
        "events_per_s": events / dt,
        "font_digits_per_s": n / t_font,
        "events_per_sample_mean": float(c.mean()),
        "events_per_sample_min": float(c.min()),
        "events_per_sample_max": float(c.max()),
        "events_in_first_frame_mean": first_frame / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "delta_346x260": bench_delta(346, 260),
        "delta_640x480": bench_delta(640, 480),
        "event_transform_346x260_to_64x48": bench_transform(),
        "saccade_34x34_1kHz": bench_saccade(),
    }
    print(f"{'benchmark':38s} {'metric':26s} {'value':>14s}")
    for name, vals in results.items():
        if isinstance(vals, dict):
            for k, v in vals.items():
                print(f"{name:38s} {k:26s} {v:14,.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
