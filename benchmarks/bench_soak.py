"""A soak: the camera graph learning from a real recording at 1 M events/s for half an hour, watched.

``configs/camera.toml`` over ipc, fed by ``simulated-camera`` playing a real DAVIS recording looped and sped
up to ``--rate``, checkpointing every 10 s into a throw-away folder, with an MQTT sink on the classifier
when a ``mosquitto`` binary is installed (a broker is started on a free port) and a console sink
otherwise. ``spikestream run`` runs it as a user would; every ``--every`` seconds this script samples the
resident memory (RSS) of each node's process from ``/proc`` and reads the nodes' periodic log lines (events,
shed, latency p50 and p99 counted from the camera, the last checkpoint's duration). At the end it prints a
table per interval and says whether memory stayed flat after warm-up (the last third against the second
third of the run, per process) and whether latency grew.

    python benchmarks/bench_soak.py [--minutes 30] [--rate 1e6] [--every 10] [--json FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_live import native_rate  # noqa: E402 - the benchmarks folder is put on the path first

#: a node's periodic log line (pipeline.progress.log_counters)
LINE = re.compile(
    r"INFO (?P<node>[\w-]+): \d+ msgs/(?P<ein>\d+) events in, \d+/(?P<eout>\d+) out, [\d.]+ M ev/s, "
    r"gaps (?P<gaps>\d+), drops \d+, malformed \d+(?:, shed (?P<shed>\d+))?"
    r"(?:, latency p50 (?P<p50>[\d.]+) ms p99 (?P<p99>[\d.]+) ms)?"
    r"(?:, checkpoint (?P<ckpt>[\d.]+) ms)?"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def node_pids(parent: int, names: list[str]) -> dict[str, int]:
    """The node processes of the ``spikestream run`` process ``parent``: its spawned children in start order
    (the graph's node order), without multiprocessing's resource tracker."""
    kids: list[int] = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        children = (task / "children").read_text().split()
        kids.extend(int(c) for c in children)
    nodes = []
    for pid in sorted(kids):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            nodes.append(pid)
    return dict(zip(names, nodes, strict=False))


def overrides(args: argparse.Namespace, port: int | None) -> tuple[list[str], list[str]]:
    """``--set`` overrides that turn configs/camera.toml into the soak graph, and its node names in order."""
    raw = tomllib.loads((ROOT / "configs" / "camera.toml").read_text())
    speed = args.rate / native_rate(args.recording)
    sets = {
        "nodes.camera.type": '"simulated-camera"',
        "nodes.camera.path": json.dumps(args.recording),
        "nodes.camera.speed": repr(speed),
        "nodes.camera.loop": "true",
        "nodes.camera.duration_s": repr(args.minutes * 60 * speed),
        "nodes.camera.slice_us": str(args.slice_us),
        "nodes.classifier.readout": '"supervised"',
        "nodes.classifier.running": "true",
        "checkpoint_s": "10",
        "log_every_s": repr(args.every),
    }
    names = list(raw["nodes"])
    if port:
        sets |= {
            "nodes.mqtt.type": '"mqtt"',
            "nodes.mqtt.host": '"127.0.0.1"',
            "nodes.mqtt.port": str(port),
            "nodes.mqtt.publish": '"all"',
            "links": json.dumps([*raw["links"], "classifier -> mqtt"]),
        }
        names.append("mqtt")
    return [f"{k}={v}" for k, v in sets.items()], names


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    """A Mosquitto broker on a free port, or ``(None, None)`` when none is installed."""
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
    )
    if binary is None:
        return None, None
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def summarise(samples: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Flatness of memory (last third against the middle third) and growth of latency."""
    n = len(samples)
    mid, last = samples[n // 3 : 2 * n // 3], samples[2 * n // 3 :]
    out: dict[str, Any] = {"rss_growth_mb": {}, "p99_ms": {}}
    for name in names:
        a = [s["rss_mb"].get(name, 0.0) for s in mid]
        b = [s["rss_mb"].get(name, 0.0) for s in last]
        if a and b:
            out["rss_growth_mb"][name] = round(float(np.median(b) - np.median(a)), 1)
    for part, rows in (("middle third", mid), ("last third", last)):
        vals = [s["nodes"].get("classifier", {}).get("p99") for s in rows]
        vals = [v for v in vals if v is not None]
        out["p99_ms"][part] = round(float(np.median(vals)), 2) if vals else None
    return out


def main() -> None:
    """Run the soak and print what it saw."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    ap.add_argument("--rate", type=float, default=1e6, help="camera events per second (default 1e6)")
    ap.add_argument("--recording", default="aedat2/pyaedattools_IMU_rotDisk.aedat", help="recording to play")
    ap.add_argument("--slice-us", type=int, default=4000, help="the camera's packet interval in µs (default 4000)")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--json", metavar="FILE", help="write the samples as JSON")
    ap.add_argument("--plot", metavar="FILE", help="write a PNG of memory and latency over time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="spikestream-soak-") as tmp:
        folder = Path(tmp)
        broker, port = start_broker(folder)
        sets, names = overrides(args, port)
        log = folder / "run.log"
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        with log.open("wb") as sink:
            run = subprocess.Popen(
                [
                    "spikestream",
                    "run",
                    str(ROOT / "configs" / "camera.toml"),
                    *(x for kv in sets for x in ("--set", kv)),
                    "--state",
                    str(folder / "state"),
                    "--results",
                    str(folder / "results.json"),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
        samples: list[dict[str, Any]] = []
        t0 = time.monotonic()
        seen = 0
        pids: dict[str, int] = {}
        try:
            while run.poll() is None:
                time.sleep(args.every)
                if len(pids) < len(names):
                    pids = node_pids(run.pid, names)
                text = log.read_text(errors="replace")
                nodes: dict[str, dict[str, float | None]] = {}
                for m in LINE.finditer(text, seen):
                    nodes[m["node"]] = {
                        "events_in": float(m["ein"]),
                        "shed": float(m["shed"] or 0),
                        "p50": float(m["p50"]) if m["p50"] else None,
                        "p99": float(m["p99"]) if m["p99"] else None,
                        "checkpoint_ms": float(m["ckpt"]) if m["ckpt"] else None,
                    }
                seen = len(text)
                samples.append(
                    {
                        "t_s": round(time.monotonic() - t0, 1),
                        "rss_mb": {name: round(rss_mb(pid), 1) for name, pid in pids.items()},
                        "nodes": nodes,
                    }
                )
                s = samples[-1]
                cls = s["nodes"].get("classifier", {})
                print(
                    f"{s['t_s']:>7.0f} s  rss "
                    + " ".join(f"{k} {v:.0f}" for k, v in s["rss_mb"].items())
                    + f"  MiB | classifier p99 {cls.get('p99')} ms"
                    + f" | stdp shed {s['nodes'].get('stdp', {}).get('shed')}",
                    flush=True,
                )
        except KeyboardInterrupt:
            run.send_signal(signal.SIGINT)
            run.wait()
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait()
        if run.returncode not in (0, 130):
            print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
        results = json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else {}
        verdict = summarise(samples, names)
        cam = results.get("nodes", {}).get("camera", {}).get("results", {})
        produced = cam.get("events_emitted", 0) + cam.get("events_dropped", 0)
        print(
            f"soak: {args.minutes:g} min at {args.rate / 1e6:g} M events/s, {platform.machine()}, exit {run.returncode}"
        )
        print(f"  camera shed {cam.get('events_dropped')} of {produced}")
        print(f"  stdp shed stale {results.get('nodes', {}).get('stdp', {}).get('counters', {}).get('shed')}")
        print(f"  RSS growth, last third vs middle third (MiB): {verdict['rss_growth_mb']}")
        print(f"  classifier latency p99 (median of the log lines): {verdict['p99_ms']}")
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {"args": vars(args), "samples": samples, "verdict": verdict, "results": results},
                    indent=1,
                    default=str,
                )
            )
        if args.plot:
            plot(samples, names, args.plot, f"soak: camera.toml at {args.rate / 1e6:g} M events/s, ipc")


def plot(samples: list[dict[str, Any]], names: list[str], path: str, title: str) -> None:
    """RSS per process and the classifier's latency p99 over time."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    samples = [s for s in samples if any(s["rss_mb"].values())]  # not after the processes ended
    t = [s["t_s"] / 60 for s in samples]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.6))
    for name in names:
        ax1.plot(t, [s["rss_mb"].get(name, np.nan) for s in samples], label=name)
        ax3.plot(t, [s["nodes"].get(name, {}).get("checkpoint_ms") or np.nan for s in samples], ".", label=name)
    for name in ("stdp", "classifier"):
        ax2.plot(t, [s["nodes"].get(name, {}).get("p99") or np.nan for s in samples], label=f"{name} input p99")
    ax1.set(xlabel="minutes", ylabel="RSS (MiB)", ylim=(0, None))
    ax2.set(xlabel="minutes", ylabel="input latency from the camera, p99 (ms)", ylim=(0, None))
    ax3.set(xlabel="minutes", ylabel="last checkpoint's duration (ms)", ylim=(0, None))
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
