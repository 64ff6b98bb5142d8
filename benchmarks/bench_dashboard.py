"""What the live dashboard costs the graph, and how late its pictures are.

1. Throughput, paired: ``configs/nmnist.toml`` on real N-MNIST (``$SPIKESTREAM_DATA``, default
   ``../shared/recordings``), shortened to ``--samples`` Train samples and ``--test`` Test samples, run
   alternately without (A) and with (B) the dashboard attached (``spikestream run --dashboard``: a tap
   from every node) and a headless Chromium showing the page, ``--pairs`` times. It reports the graph's
   events/s (the results file's ``events_per_s``) of each run and the ratio B/A per pair; the issue's
   target is >= 97 %.
2. Frame latency: the camera graph of ``benchmarks/bench_live.py`` (configs/camera.toml, a simulated
   camera playing a real DAVIS recording sped up to ``--rate`` events/s, stamped with the wall clock)
   with the dashboard and a browser attached. The page notes, for every frame it draws, how long ago the
   newest events of that frame were made (their message's ``created_ns``) — event to pixel on the page,
   the 100 ms between frames included. p50/p99 after the first ``--warmup`` seconds, per stream (the
   camera's frame at the sensor's resolution, the encoder's at the network's).

3. What watching costs the STDP network itself (``--skip watch`` to leave it out): the N-MNIST network
   of configs/nmnist.toml over ``--watch-samples`` real Train samples in 1 ms batches, two networks taking
   each batch in turn: one plain, one counting spikes per map (``Network.count_maps``) with
   ``network_view`` read every second and kernels every 3 s as a tapped node does; ratio of the CPU
   seconds (``thread_time``, less sensitive to a loaded machine than wall time), median over rounds.

Headless Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (nothing is downloaded).

    python benchmarks/bench_dashboard.py [--pairs 4] [--samples 150] [--test 50] [--rate 1e6]
                                         [--seconds 12] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nodes.dashboard.attach import attach_dashboard
from pipeline.config import parse_graph
from pipeline.runner import run_graph

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    """A tcp port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nmnist_table(samples: int, test: int, transport: str = "inproc") -> dict[str, Any]:
    """configs/nmnist.toml with its phases shortened: one pass over ``samples`` Train, ``test`` Test samples."""
    raw = tomllib.loads((ROOT / "configs" / "nmnist.toml").read_text())
    raw["log_every_s"] = 0
    raw["transport"] = transport
    raw["nodes"]["evaluate"]["log_every"] = 0
    raw["nodes"]["source"]["phases"] = [
        {"split": "Train", "samples": samples, "passes": 1, "name": "train"},
        {"split": "Test", "samples": test, "features": False, "classifier": False, "name": "test"},
    ]
    return raw


class Browser:
    """A headless Chromium in a thread of its own (Playwright's sync API stays in the thread that started
    it): ``watch(url, ready)`` opens the page once ``ready()`` says the server is up, keeps it open until
    ``done`` is set, and returns the page's frame latencies (ms per stream)."""

    def __init__(self) -> None:
        self._jobs: list[tuple[str, threading.Event, dict[str, Any]]] = []
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._closing = False
        self._thread.start()

    def _main(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            while True:
                with self._wake:
                    while not self._jobs and not self._closing:
                        self._wake.wait()
                    if self._closing:
                        break
                    url, done, out = self._jobs.pop(0)
                self._show(browser, url, done, out)
            browser.close()

    @staticmethod
    def _show(browser: Any, url: str, done: threading.Event, out: dict[str, Any]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done.is_set():
            try:
                with urllib.request.urlopen(url + "api/status", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            out["opened"] = time.monotonic()
            done.wait()
            out["latencies"] = page.evaluate("() => window.frameLatencies")
            out["frames"] = page.evaluate("() => Object.values(window.frameLatencies).map((l) => l.length)")
        finally:
            page.close()
            out["finished"] = True

    def watch(self, url: str) -> tuple[threading.Event, dict[str, Any]]:
        """Start showing ``url``; set the returned event when the run has ended, then read the dict."""
        done, out = threading.Event(), dict[str, Any]()
        with self._wake:
            self._jobs.append((url, done, out))
            self._wake.notify()
        return done, out

    def close(self) -> None:
        """End the browser."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(30)


@contextmanager
def watched(browser: Browser | None, url: str) -> Iterator[dict[str, Any]]:
    """A page on ``url`` for the run inside the block (nothing without a browser)."""
    if browser is None:
        yield {}
        return
    done, out = browser.watch(url)
    try:
        yield out
    finally:
        done.set()
        deadline = time.monotonic() + 30
        while not out.get("finished") and time.monotonic() < deadline:
            time.sleep(0.05)


def descendants_cpu_s() -> float:
    """CPU seconds used so far by this process's descendants that are still alive (the browser's
    processes), read from /proc: what the page costs the machine beside the graph."""
    parent: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    me = os.getpid()
    total = 0.0
    for pid, cpu in times.items():
        p = parent.get(pid, 0)
        while p not in (0, 1, me):
            p = parent.get(p, 0)
        if p == me:
            total += cpu
    return total


def run_once(
    table: dict[str, Any], browser: Browser | None, *, dashboard: bool | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of ``table`` with a dashboard (``dashboard``, default: when ``browser``) and a page on it
    (when ``browser``); its results and the page's."""
    graph = parse_graph(table, "bench_dashboard")
    port = free_port()
    if dashboard or (dashboard is None and browser is not None):
        graph = attach_dashboard(graph, f"127.0.0.1:{port}")
    with watched(browser, f"http://127.0.0.1:{port}/") as page:
        results = run_graph(graph)
    if results["errors"]:
        msg = f"benchmark graph failed: {results['errors']}"
        raise SystemExit(msg)
    return results, page


def throughput(args: argparse.Namespace, browser: Browser) -> dict[str, Any]:
    """Pairs of runs of the shortened N-MNIST config, without (A) and with (B) the dashboard and a page (the
    order alternates); with ``--no-page-arm`` a third run per pair, C: the dashboard without a page."""
    table = nmnist_table(args.samples, args.test, args.graph_transport)
    run_once(nmnist_table(5, 2, args.graph_transport), None)  # compile and page in everything once, outside the figures
    pairs: list[dict[str, Any]] = []
    for i in range(args.pairs):
        order: tuple[str, ...] = ("A", "B") if i % 2 == 0 else ("B", "A")
        if args.no_page_arm:
            order = ("A", "B", "C") if i % 2 == 0 else ("C", "B", "A")
        rates: dict[str, float] = {}
        stdp: dict[str, float] = {}
        cpu: dict[str, float] = {}
        extra: dict[str, Any] = {}
        for arm in order:
            browser_cpu = descendants_cpu_s()
            t0 = time.monotonic()
            results, page = run_once(table, browser if arm == "B" else None, dashboard=arm != "A")
            if arm == "B":  # cores the browser kept busy while the graph ran
                browser_cores = (descendants_cpu_s() - browser_cpu) / (time.monotonic() - t0)
            rates[arm] = float(results["events_per_s"])
            node = results["nodes"]["stdp"]  # the network's own rate: its input over its running time
            stdp[arm] = node["counters"]["events_in"] / node["wall_s"]
            # inproc: any node's cpu_s is the whole graph's; ipc: the stdp process's (browser excluded)
            cpu[arm] = node["cpu_s"] / results["events_in"]
            if arm == "B":
                extra = {
                    "frames_sent": results.get("dashboard_frames_sent"),
                    "frames_dropped": results.get("dashboard_frames_dropped"),
                    "tap_lost": results.get("dashboard_tap_lost"),
                    "page_frames": page.get("frames"),
                    "browser_cores": round(browser_cores, 2),
                }
            events = results["events_in"]
        pair: dict[str, Any] = {"order": "".join(order), "A": rates["A"], "B": rates["B"]}
        pair["ratio"] = rates["B"] / rates["A"]
        pair["stdp_ratio"] = stdp["B"] / stdp["A"]
        pair["cpu_ratio"] = cpu["B"] / cpu["A"]
        if "C" in rates:
            pair["no_page_ratio"] = rates["C"] / rates["A"]
            pair["no_page_cpu_ratio"] = cpu["C"] / cpu["A"]
        pairs.append(pair | {"events": events} | extra)
        print(
            f"pair {i + 1} ({pair['order']}): without {rates['A'] / 1e6:.3f} M ev/s, with {rates['B'] / 1e6:.3f} "
            f"M ev/s: {100 * pair['ratio']:.1f} % (stdp node's own rate: {100 * pair['stdp_ratio']:.1f} %; "
            f"graph CPU per event: {100 * pair['cpu_ratio']:.1f} %)  {extra}"
            + (
                f"; dashboard without a page: {100 * pair['no_page_ratio']:.1f} % "
                f"(CPU per event {100 * pair['no_page_cpu_ratio']:.1f} %)"
                if "C" in rates
                else ""
            ),
            flush=True,
        )
    ratios = [float(p["ratio"]) for p in pairs]
    return {
        "pairs": pairs,
        "ratio_median": statistics.median(ratios),
        "ratio_mean": statistics.fmean(ratios),
        "stdp_ratio_median": statistics.median(float(p["stdp_ratio"]) for p in pairs),
        "cpu_ratio_median": statistics.median(float(p["cpu_ratio"]) for p in pairs),
        "browser_cores_median": statistics.median(float(p["browser_cores"]) for p in pairs),
    } | (
        {
            "no_page_ratio_median": statistics.median(float(p["no_page_ratio"]) for p in pairs),
            "no_page_cpu_ratio_median": statistics.median(float(p["no_page_cpu_ratio"]) for p in pairs),
        }
        if args.no_page_arm
        else {}
    )


def latency(args: argparse.Namespace, browser: Browser) -> dict[str, Any]:
    """The camera graph at ``args.rate`` with the dashboard and a page: the page's frame latencies."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_live

    live_args = argparse.Namespace(
        config=str(ROOT / "configs" / "camera.toml"),
        set=[],
        slice_us=4000,
        recording=args.recording,
        seconds=args.seconds,
        network="camera",
    )
    native = bench_live.native_rate(args.recording)
    table = bench_live.graph_table(live_args, args.transport, args.rate / native)
    if args.tap_hwm:
        table["tap_hwm"] = args.tap_hwm
    results, page = run_once(table, browser)
    out: dict[str, Any] = {"rate": args.rate, "transport": args.transport, "streams": {}}
    for stream, values in (page.get("latencies") or {}).items():
        ms = np.asarray(values, np.float64)[int(args.warmup * 10) :]  # 10 frames a second: skip the warmup
        if ms.size:
            out["streams"][stream] = {
                "frames": int(ms.size),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p99_ms": round(float(np.percentile(ms, 99)), 1),
            }
    cam = results["nodes"]["camera"]["results"]
    produced = cam["events_emitted"] + cam["events_dropped"]
    out["camera_shed_ratio"] = cam["events_dropped"] / produced if produced else 0.0
    out["answer"] = results["nodes"]["answers"]["results"]
    out["frames_sent"] = results.get("dashboard_frames_sent")
    out["frames_dropped"] = results.get("dashboard_frames_dropped")
    out["tap_lost"] = results.get("dashboard_tap_lost")
    print(f"frame latency at {args.rate / 1e6:g} M ev/s ({args.transport}): {json.dumps(out)}", flush=True)
    return out


def nmnist_samples(n: int) -> list[np.ndarray]:
    """The first ``n`` N-MNIST Train samples (every digit's folder in turn) as input spikes."""
    from pipeline.config import data_path
    from pipeline.events import SPIKE_DTYPE

    root = Path(data_path("nmnist")) / "Train"
    files = sorted(root.glob("*/*.bin"), key=lambda p: (p.name, p.parent.name))[:n]
    out = []
    for path in files:
        b = np.fromfile(path, np.uint8).reshape(-1, 5).astype(np.int64)
        s = np.zeros(len(b), SPIKE_DTYPE)
        s["x"], s["y"], s["c"] = b[:, 0], b[:, 1], b[:, 2] >> 7
        s["t"] = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
        s = s[(s["x"] < 34) & (s["y"] < 34)]
        out.append(s[np.argsort(s["t"], kind="stable")])
    return out


def watch_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds of ``Network.process`` over the samples, plain and watched, alternating; their ratio."""
    from nodes.stdp import Network
    from nodes.stdp.node import StdpConfig
    from nodes.stdp.view import network_view
    from pipeline.config import build_params

    raw = tomllib.loads((ROOT / "configs" / "nmnist.toml").read_text())["nodes"]["stdp"]
    cfg = build_params(StdpConfig, {k: v for k, v in raw.items() if k != "type"}, "nodes.stdp")
    samples = nmnist_samples(args.watch_samples)
    batches = [s[(s["t"] // 1000) == ms] for s in samples for ms in np.unique(s["t"] // 1000)]

    def one_round() -> tuple[float, float]:
        # the two networks take each batch in turn (which goes first alternates): load drifts cancel out
        nets = [Network(cfg.input, cfg.layers, seed=cfg.seed) for _ in range(2)]
        plain, watched = nets
        network_view(watched, full=True)  # the first view starts the counting, as for a tapped node
        took = [0.0, 0.0]
        seen = full = time.process_time()
        for k, b in enumerate(batches):
            for j in (0, 1) if k % 2 == 0 else (1, 0):
                t0 = time.thread_time()
                nets[j].process(b)
                took[j] += time.thread_time() - t0
            now = time.process_time()
            if now - seen >= 1.0:  # a tapped node's view each second, the kernels every 3 s
                t0 = time.thread_time()
                network_view(watched, full=now - full >= 3.0)
                took[1] += time.thread_time() - t0
                full = now if now - full >= 3.0 else full
                seen = now
        assert np.array_equal(plain.state_dict()["0.weight"], watched.state_dict()["0.weight"])
        return took[0], took[1]

    one_round()  # compile
    ratios = []
    for i in range(args.watch_rounds):
        plain_s, watched_s = one_round()
        ratios.append(watched_s / plain_s)
        print(f"watch round {i + 1}: plain {plain_s:.2f} CPU s, watched {watched_s:.2f} CPU s", flush=True)
    median = statistics.median(ratios)
    print(f"the network's CPU time watched / plain: median {100 * median:.1f} %", flush=True)
    return {"batches": len(batches), "ratios": ratios, "ratio_median": median}


def load() -> str:
    """The machine's load averages now (1, 5, 15 min)."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    """Run the paired throughput runs, then the latency run; print and optionally save the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pairs", type=int, default=4, help="A/B pairs of N-MNIST runs (default 4)")
    ap.add_argument("--samples", type=int, default=150, help="Train samples per run (default 150)")
    ap.add_argument("--test", type=int, default=50, help="Test samples per run (default 50)")
    ap.add_argument("--rate", type=float, default=1e6, help="camera rate for the latency run (default 1e6)")
    ap.add_argument("--seconds", type=float, default=12.0, help="wall seconds of the latency run (default 12)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of frames not counted (default 2)")
    ap.add_argument("--transport", default="ipc", help="transport of the latency run (default ipc)")
    ap.add_argument(
        "--graph-transport", default="inproc", help="transport of the N-MNIST runs (default inproc: one process)"
    )
    ap.add_argument("--recording", default="aedat2/pyaedattools_IMU_rotDisk.aedat", help="the camera's recording")
    ap.add_argument("--no-page-arm", action="store_true", help="also run the dashboard without a page (C)")
    ap.add_argument("--tap-hwm", type=int, default=0, help="the latency graph's tap_hwm (default: its own)")
    ap.add_argument("--watch-samples", type=int, default=60, help="N-MNIST samples of the watch-cost part")
    ap.add_argument("--watch-rounds", type=int, default=4, help="rounds (plain and watched) of the watch-cost part")
    ap.add_argument(
        "--skip", choices=("throughput", "latency", "watch"), action="append", default=[], help="skip a part"
    )
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": platform.platform(), "args": vars(args), "load_before": load()}
    print(f"load average before: {out['load_before']}", flush=True)
    if "watch" not in args.skip:
        out["watch"] = watch_cost(args)
    browser = Browser()
    try:
        if "throughput" not in args.skip:
            out["throughput"] = throughput(args, browser)
            t = out["throughput"]
            print(
                f"events/s with the dashboard and a page / without: median {100 * t['ratio_median']:.1f} %, "
                f"mean {100 * t['ratio_mean']:.1f} % over {len(t['pairs'])} pairs (target >= 97 %); the stdp "
                f"node's own rate: median {100 * t['stdp_ratio_median']:.1f} %; the graph process's CPU per event: "
                f"median {100 * t['cpu_ratio_median']:.1f} %; the browser: median {t['browser_cores_median']:.2f} cores"
                + (
                    f"; the dashboard without a page: median {100 * t['no_page_ratio_median']:.1f} % "
                    f"(CPU per event {100 * t['no_page_cpu_ratio_median']:.1f} %)"
                    if "no_page_ratio_median" in t
                    else ""
                ),
                flush=True,
            )
        if "latency" not in args.skip:
            out["latency"] = latency(args, browser)
    finally:
        browser.close()
    out["load_after"] = load()
    print(f"load average after: {out['load_after']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
