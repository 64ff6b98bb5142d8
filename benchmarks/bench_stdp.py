"""Throughput of the STDP feature extractor on one core (input events per second).

The N-MNIST network of thesis 3.3.2 exactly as configs/nmnist.toml sets it up (read from the file): input
2x34x34, conv 16C5 (th 8/8), pool, conv 128C5 (th 50/50), pool, fc 1024 (th 60/60), its learning steps and
fc inference WTA, learning on and off, on

* a synthetic N-MNIST-like stream (random pen strokes on 28x28 moved by three saccades inside 34x34,
  ON/OFF events where the shifted image gets brighter/darker), and
* real N-MNIST samples from ``$SPIKESTREAM_DATA/nmnist`` (or ``../shared/recordings``) when present,
  decoded and concatenated with time shifts.

    python benchmarks/bench_stdp.py [--samples 100] [--repeat 3] [--json out.json] [--breakdown]
                                    [--threads 1,2,3] [--split 2,4]

Each case runs ``--repeat`` times on a fresh network and the fastest run is reported (all are printed
and kept in the JSON): on the shared 2-core VM single runs of the same code vary by up to ~10 %.

Per-layer figures are the seconds each layer takes for the whole stream (layer by layer, as
``Network.process`` runs them) divided into the number of network input events.

``--breakdown`` splits the two convolutions' time (learning on, real data when present) into the
accumulation itself and what the spikes add: each layer is run alone on its real input stream with
both thresholds, with one of them out of reach (no learning or no inference spikes), and with both
out of reach (integration only). The spike costs interact, so the parts add up only roughly.

``--threads 1,2`` also runs the network pipelined over threads (``nodes.stdp.pipelined``, what a node
with ``threads = N`` runs) on the same stream (real when present), learning on, fed in batches of
realistic size: one sample per batch, and 1 ms slices. Each repeat runs every thread count in turn
(paired on the same minutes of the VM); it prints input events/s per thread count (median of the
repeats), the median of the paired ratios to one thread and the cores kept busy (CPU seconds of all
threads over wall seconds: on a shared VM, what the other work left), and checks that the per-layer
counters agree with one thread's. ``--split`` sets where the groups start (default: the cost estimate's choice).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nodes.stdp import ConvParams, FcParams, LayerParams, Network
from nodes.stdp.network import _columns, _pool
from nodes.stdp.node import StdpConfig
from nodes.stdp.pipelined import PipelinedNetwork
from nodes.stdp.split import default_split
from nodes.stdp.state import PoolLayer
from pipeline.config import NODE_RUNTIME_KEYS, build_params, data_root
from pipeline.events import SPIKE_DTYPE

SHAPE = (2, 34, 34)


CONFIG = Path(__file__).resolve().parents[1] / "configs" / "nmnist.toml"


def nmnist_layers(wta_inf: bool = True) -> list[LayerParams]:
    """The layers of configs/nmnist.toml's stdp node (thresholds, radii, learning steps), so that the
    benchmark measures the network the protocol runs. ``wta_inf=False`` (``--no-wta-inf``) measures the
    thesis table's plain fc instead of the config's."""
    with CONFIG.open("rb") as f:
        table = tomllib.load(f)["nodes"]["stdp"]
    params = {k: v for k, v in table.items() if k not in NODE_RUNTIME_KEYS}
    layers = build_params(StdpConfig, params, f"{CONFIG} [nodes.stdp]").layers
    return [replace(p, wta_inf=wta_inf) if isinstance(p, FcParams) else p for p in layers]


def synthetic_stream(samples: int, seed: int = 0) -> np.ndarray:
    """N-MNIST-like events: a stroke image seen by a sensor that makes three small saccades."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:34, 0:34]
    parts = []
    t0 = 0
    for _ in range(samples):
        img = np.zeros((34, 34))
        for _stroke in range(rng.integers(2, 5)):  # a few thick line segments inside the central 28x28
            (y0, x0), (y1, x1) = rng.uniform(6, 28, size=(2, 2))
            for a in np.linspace(0.0, 1.0, 30):
                cy, cx = y0 + a * (y1 - y0), x0 + a * (x1 - x0)
                img = np.maximum(img, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0))
        pos = np.zeros(2)
        prev = img
        t = t0
        for direction in ((1.0, 1.0), (-1.0, 0.0), (0.0, -1.0)):  # 3 saccades of ~100 ms
            for _step in range(25):
                pos += np.array(direction) * 0.12
                dy, dx = pos
                # sub-pixel shift by bilinear interpolation
                fy, fx = dy - np.floor(dy), dx - np.floor(dx)
                base = np.roll(np.roll(img, int(np.floor(dy)), axis=0), int(np.floor(dx)), axis=1)
                right = np.roll(base, 1, axis=1)
                down = np.roll(base, 1, axis=0)
                diag = np.roll(down, 1, axis=1)
                shifted = (1 - fy) * ((1 - fx) * base + fx * right) + fy * ((1 - fx) * down + fx * diag)
                diff = shifted - prev
                noise = rng.random(diff.shape) < 0.002
                on = (diff > 0.1) | (noise & (rng.random(diff.shape) < 0.5))
                off = (diff < -0.1) | (noise & ~on)
                ys, xs = np.nonzero(on | off)
                pol = on[ys, xs].astype(np.int64)
                order = rng.permutation(len(ys))
                ev = np.zeros(len(ys), SPIKE_DTYPE)
                ev["t"] = t + np.sort(rng.integers(0, 4000, len(ys)))
                ev["y"], ev["x"], ev["c"] = ys[order], xs[order], pol[order]
                parts.append(ev)
                prev = np.where(on | off, shifted, prev)
                t += 4000
        t0 = t + 10_000
    return np.concatenate(parts)


def decode_nmnist(path: Path) -> np.ndarray:
    b = np.fromfile(path, np.uint8).reshape(-1, 5).astype(np.int64)
    s = np.zeros(len(b), SPIKE_DTYPE)
    s["x"], s["y"], s["c"] = b[:, 0], b[:, 1], b[:, 2] >> 7
    s["t"] = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    return s


def real_stream(samples: int) -> np.ndarray | None:
    root = data_root(Path(__file__).resolve().parent.parent)
    files = sorted((root / "nmnist" / "Train").glob("*/*.bin"))
    if not files:
        return None
    rng = np.random.default_rng(0)
    chosen = [files[i] for i in rng.permutation(len(files))[:samples]]
    parts, offset = [], 0
    for f in chosen:
        s = decode_nmnist(f)
        s["t"] += offset
        offset = int(s["t"][-1]) + 10_000
        parts.append(s)
    stream: np.ndarray = np.concatenate(parts)
    return stream


def measure(stream: np.ndarray, learning: bool, wta_inf: bool = True) -> dict[str, Any]:
    net = Network(SHAPE, nmnist_layers(wta_inf), seed=0)
    net.learning = learning
    warm = Network(SHAPE, nmnist_layers(wta_inf), seed=0)  # compile (or load the numba cache) outside the timing
    warm.learning = learning
    warm.process(stream[:2000])
    per_layer = []
    start = time.perf_counter()
    current = _columns(stream)
    for i, layer in enumerate(net._layers):  # the same steps as Network.process, timed one by one
        t0 = time.perf_counter()
        nxt = _pool(current, layer) if isinstance(layer, PoolLayer) else net.run_layers(current, i, i + 1, learning)
        per_layer.append({"seconds": time.perf_counter() - t0, "inputs": len(current[0]), "outputs": len(nxt[0])})
        current = nxt
    total = time.perf_counter() - start
    names = ["conv1", "pool1", "conv2", "pool2", "fc"]
    counts = net.counters()
    layers = {}
    for name, info, cnt in zip(names, per_layer, counts, strict=True):
        layers[name] = {
            **info,
            "learning_spikes": cnt["learning_spikes"],
            "layer_inputs_per_s": info["inputs"] / info["seconds"] if info["seconds"] > 0 else float("inf"),
            "network_events_per_s": len(stream) / info["seconds"] if info["seconds"] > 0 else float("inf"),
        }
    return {"events": len(stream), "seconds": total, "events_per_s": len(stream) / total, "layers": layers}


def breakdown(stream: np.ndarray, wta_inf: bool = True) -> None:
    """Seconds of conv1 and conv2 alone, learning on, with each kind of spike switched off in turn."""
    layers = nmnist_layers(wta_inf)
    net = Network(SHAPE, layers, seed=0)
    inputs = {"conv1": stream, "conv2": net.process_all_layers(stream)[1]}
    conv1, conv2 = layers[0], layers[2]
    if not (isinstance(conv1, ConvParams) and isinstance(conv2, ConvParams)):
        msg = f"the breakdown needs conv layers first and third, as in {CONFIG}"
        raise SystemExit(msg)
    specs = {"conv1": ((2, 34, 34), conv1), "conv2": ((16, 15, 15), conv2)}
    never = 1e30
    print(f"\nbreakdown, learning on, {len(stream)} network input events (best of 2):")
    for name, (shape, conv) in specs.items():
        row = []
        th = conv.th_learn
        for th_learn, th_inf in ((th, th), (th, never), (never, th), (never, never)):
            best = float("inf")
            for rep in range(3):  # the first run also compiles
                layer_net = Network(shape, [replace(conv, th_learn=th_learn, th_inf=th_inf)])
                part = inputs[name] if rep else inputs[name][:2000]
                t0 = time.perf_counter()
                layer_net.process(part)
                if rep:
                    best = min(best, time.perf_counter() - t0)
            row.append(best)
        full, no_inf, no_learn, bare = row
        print(
            f"  {name}: {len(inputs[name])} inputs; all spikes {full:.2f} s, without inference spikes "
            f"{no_inf:.2f} s, without learning spikes {no_learn:.2f} s, integration only {bare:.2f} s"
        )


def batch_cuts(stream: np.ndarray, how: str) -> np.ndarray:
    """Where the batches of ``stream`` start and end: ``sample`` cuts at the 10 ms gaps the streams put
    between samples, ``1ms`` at every change of ``t // 1000``."""
    t = stream["t"]
    edges = np.diff(t) >= 10_000 if how == "sample" else np.diff(t // 1000) != 0
    inner = np.flatnonzero(edges) + 1
    return np.concatenate([[0], inner, [len(t)]])


def run_batches(
    stream: np.ndarray, cuts: np.ndarray, threads: int, split: Sequence[int]
) -> tuple[float, float, list[Any]]:
    """Wall and CPU seconds (all threads) to run the batches through a fresh network (learning on), one
    thread or pipelined over ``threads``, and its per-layer counters."""
    layers = nmnist_layers()
    net = Network(SHAPE, layers, seed=0)
    batches = [stream[a:b] for a, b in itertools.pairwise(cuts)]
    c0, t0 = time.process_time(), time.perf_counter()
    if threads == 1:
        for batch in batches:
            net.process(batch)
    else:
        with PipelinedNetwork[int](net, tuple(split) or default_split(SHAPE, layers, threads)) as pipe:
            for i, batch in enumerate(batches):
                pipe.submit(batch, i)
                pipe.take()
            pipe.wait()
            pipe.take()
    return time.perf_counter() - t0, time.process_time() - c0, net.counters()


def threads_cases(stream: np.ndarray, counts: Sequence[int], split: Sequence[int], repeat: int) -> dict[str, Any]:
    """Input events/s of the pipelined network per thread count and batching (see the module docstring)."""
    warm = Network(SHAPE, nmnist_layers(), seed=0)
    warm.process(stream[:2000])
    out: dict[str, Any] = {}
    layers = nmnist_layers()
    print(f"\nthreads, learning on, {len(stream)} input events (median of {repeat}; ratio: median of paired ratios)")
    for how in ("sample", "1ms"):
        cuts = batch_cuts(stream, how)
        seconds: dict[int, list[float]] = {n: [] for n in counts}
        cpu: dict[int, list[float]] = {n: [] for n in counts}
        for _ in range(repeat):
            reference = None
            for n in counts:
                secs, cpu_secs, counters = run_batches(stream, cuts, n, split)
                cpu[n].append(cpu_secs / secs)
                if reference is None:
                    reference = counters
                elif counters != reference:
                    msg = f"threads = {n} computed other counters than threads = {counts[0]}: {counters} {reference}"
                    raise SystemExit(msg)
                seconds[n].append(secs)
        case: dict[str, Any] = {"batches": len(cuts) - 1, "mean_batch": len(stream) / (len(cuts) - 1)}
        for n in counts:
            starts = () if n == 1 else tuple(split) or default_split(SHAPE, layers, n)
            rate = len(stream) / statistics.median(seconds[n])
            ratio = statistics.median(a / b for a, b in zip(seconds[counts[0]], seconds[n], strict=True))
            cores = statistics.median(cpu[n])
            case[str(n)] = {
                "split": list(starts),
                "events_per_s": rate,
                "ratio": ratio,
                "seconds": seconds[n],
                "cpu_per_wall": cpu[n],
            }
            print(
                f"  {how:6} batches ({case['mean_batch']:7.1f} events): threads {n} split {list(starts)!s:9} "
                f"{rate / 1e6:.3f}M ev/s  x{ratio:.2f}  cores busy {cores:.2f}  "
                f"(runs: {'/'.join(f'{s:.2f}' for s in seconds[n])} s)"
            )
        out[how] = case
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100, help="samples per stream (default 100)")
    ap.add_argument("--json", type=Path, help="write the results to this JSON file")
    ap.add_argument("--no-wta-inf", action="store_true", help="fc without inference inhibition")
    ap.add_argument("--breakdown", action="store_true", help="also split conv1/conv2 time by kind of spike")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest is reported (default 3)")
    ap.add_argument("--threads", default="", help="also compare these thread counts, e.g. 1,2,3 (first: the baseline)")
    ap.add_argument("--split", default="", help="with --threads: where groups 2.. start, e.g. 2 (default: estimated)")
    args = ap.parse_args()
    wta_inf = not args.no_wta_inf
    streams = {"synthetic": synthetic_stream(args.samples)}
    real = real_stream(args.samples)
    if real is not None:
        streams["nmnist"] = real
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}".strip(),
        "network": "2x34x34 conv16C5(8/8) pool conv128C5(50/50) pool fc1024(60/60)",
        "runs": {},
    }
    print(f"{'stream':10} {'learn':5} {'events':>9} {'ev/s':>10}   per layer: inputs -> outputs, network ev/s")
    for sname, stream in streams.items():
        for learning in (True, False):
            # best of --repeat runs (fresh network each time): on a shared VM single runs vary by ~10 %
            tries = [measure(stream, learning, wta_inf) for _ in range(args.repeat)]
            r = max(tries, key=lambda run: run["events_per_s"])
            r["all_events_per_s"] = [run["events_per_s"] for run in tries]
            results["runs"][f"{sname}/{'learn' if learning else 'frozen'}"] = r
            layer_txt = "  ".join(
                f"{n}: {v['inputs']}->{v['outputs']} {v['network_events_per_s'] / 1e6:.2f}M"
                for n, v in r["layers"].items()
                if not n.startswith("pool")
            )
            spread = "/".join(f"{v / 1e6:.3f}" for v in r["all_events_per_s"])
            rate = r["events_per_s"] / 1e6
            print(f"{sname:10} {learning!s:5} {r['events']:9d} {rate:8.3f}M   {layer_txt}   (runs: {spread})")
    if args.threads:
        counts = [int(v) for v in args.threads.split(",")]
        split = [int(v) for v in args.split.split(",")] if args.split else []
        stream = streams.get("nmnist", streams["synthetic"])
        results["threads"] = threads_cases(stream, counts, split, args.repeat)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.breakdown:
        breakdown(streams.get("nmnist", streams["synthetic"]), wta_inf)


if __name__ == "__main__":
    main()
