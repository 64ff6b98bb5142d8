"""Process mode: each node of a graph in its own process, over ipc or tcp, watched by a supervisor.

The supervisor starts one process per node and gives the go once every node has opened its sockets,
restored its state and started. It collects each node's report, stops the graph when a node fails or a stop
signal arrives, and kills what does not end. Each run keeps its sockets in a folder of its own, which the
next run removes if this one was killed before it could.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq.asyncio

from .checkpoint import RestorePlan
from .config import GraphConfig
from .endpoints import Endpoints, resolve_endpoints
from .errors import SpikestreamError
from .lifecycle import ignore_stop_signals, install_stop_handlers, stop_grace_s, terminate
from .node_runner import NodeRunner
from .summary import summarize
from .validation import BuiltNode

log = logging.getLogger("spikestream.runner")

_RUN_DIR_PREFIX = "spikestream-"


def run_processes(
    graph: GraphConfig,
    nodes: Mapping[str, BuiltNode],
    *,
    state_dir: str | None = None,
    plan: RestorePlan | None = None,
    startup_timeout_s: float = 60.0,
) -> dict[str, Any]:
    """Run each validated node of ``graph`` (transport ipc or tcp) in its own process and supervise them."""
    grace_s = stop_grace_s()
    mpctx = mp.get_context("spawn")
    _remove_stale_run_dirs()
    with tempfile.TemporaryDirectory(prefix=_RUN_DIR_PREFIX) as run_dir:
        Path(run_dir, "pid").write_text(f"{_pid_namespace()} {os.getpid()}")
        endpoints = resolve_endpoints(graph, run_dir, pick_ports=True)
        reports_q = mpctx.Queue()
        go = mpctx.Event()
        eos_taken = {(u, d): mpctx.Event() for d in graph.nodes for u in graph.upstream(d)}
        level = logging.getLogger().getEffectiveLevel()
        procs = {
            name: mpctx.Process(
                target=_child_main,
                args=(graph, nodes[name], endpoints, reports_q, go, state_dir, plan, grace_s, level, eos_taken),
                name=f"spikestream-{name}",
                daemon=True,
            )
            for name in graph.nodes
        }
        watch = _Watch(graph, procs, reports_q)
        old = {sig: signal.signal(sig, watch.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        streaming = False
        try:
            for p in procs.values():
                p.start()
            watch.wait_started(startup_timeout_s)
            t0 = time.perf_counter()
            go.set()
            streaming = True
            log.info(
                "graph %r running: %d nodes in separate processes over %s", graph.name, len(procs), graph.transport
            )
            watch.collect()
            wall = time.perf_counter() - t0
        finally:
            for p in procs.values():
                # A graph that failed or was stopped while starting has streamed nothing and changed no
                # state: its nodes (some still loading, some waiting for the go) are ended at once.
                p.join(timeout=grace_s + 5 if streaming else 0.5)
                if p.is_alive():
                    p.kill()
                    p.join()
            for sig, handler in old.items():
                signal.signal(sig, handler)
    reports = watch.reports
    for name, why in watch.failures.items():
        reports[name] = {"type": graph.nodes[name].type, "error": why}
    return summarize(graph, reports, wall, watch.stopped_by)


class _Watch:
    """The supervisor's view of the node processes: who is ready, started, reported or failed."""

    def __init__(self, graph: GraphConfig, procs: dict[str, Any], reports_q: Any) -> None:
        self.graph = graph
        self.procs = procs
        self.reports_q = reports_q
        self.stopping = False
        #: the signal that stopped the run, if one did
        self.stopped_by: str | None = None
        self.reports: dict[str, Any] = {}
        self.failures: dict[str, str] = {}

    def on_signal(self, signum: int, _frame: object) -> None:
        """A stop signal (Ctrl-C, SIGTERM): note which, and stop the graph."""
        self.stopped_by = self.stopped_by or signal.Signals(signum).name
        self.stop_all()

    def stop_all(self, *_: Any) -> None:
        """Ask every node that has not ended to end its stream (SIGTERM)."""
        if not self.stopping:
            log.info("stopping: asking every node to end its stream")
        self.stopping = True
        for n, p in self.procs.items():
            if n not in self.reports and n not in self.failures and p.is_alive() and p.pid:  # not those that ended
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    def wait_started(self, startup_timeout_s: float) -> None:
        """Wait for the two steps before the go: every node has opened its sockets ("ready", within the
        start-up timeout), then every node has restored its state and started ("started": no deadline, a
        large checkpoint or data set may take a while; said in the log after 10 s)."""
        graph, procs = self.graph, self.procs
        ready: set[str] = set()
        started: set[str] = set()
        began = time.monotonic()
        said = False
        while len(started) < len(procs):
            try:
                kind, name, payload = self.reports_q.get(timeout=0.2)
            except queue.Empty:
                dead = [n for n, p in procs.items() if not p.is_alive()]
                if self.stopping:
                    msg = f"graph {graph.name!r} interrupted while starting"
                    raise SpikestreamError(msg) from None
                late = len(ready) < len(procs) and time.monotonic() - began > startup_timeout_s
                if dead or late:
                    self.stop_all()
                    what = ", ".join(dead) if dead else ", ".join(n for n in procs if n not in ready)
                    msg = f"graph {graph.name!r} did not start: {what} failed to start"
                    raise SpikestreamError(msg) from None
                if not said and time.monotonic() - began > 10.0:
                    waiting = ", ".join(n for n in procs if n not in started)
                    log.info("graph %r: waiting for %s to start", graph.name, waiting)
                    said = True
                continue
            if kind == "ready":
                ready.add(name)
            elif kind == "started":
                started.add(name)
            elif kind == "failed":
                self.stop_all()
                raise SpikestreamError(payload if f"nodes.{name}" in payload else f"nodes.{name}: {payload}")

    def collect(self) -> None:
        """Collect every node's report (or failure) while the graph streams."""
        procs, reports, failures = self.procs, self.reports, self.failures
        lossless = {n for n in self.graph.nodes if not self.graph.fed_by_taps_only(n)}
        while len(reports) + len(failures) < len(procs):
            try:
                kind, name, payload = self.reports_q.get(timeout=0.2)
                if kind == "report":
                    reports[name] = payload
                elif kind == "failed":
                    failures[name] = payload
                    self.stop_all()
            except queue.Empty:
                pass
            for n, p in procs.items():
                if n not in reports and n not in failures and not p.is_alive() and p.exitcode not in (0, None):
                    with contextlib.suppress(queue.Empty):
                        while True:  # a report may still be in flight
                            kind, name, payload = self.reports_q.get(timeout=0.2)
                            (reports if kind == "report" else failures)[name] = payload
                    if n not in reports and n not in failures:
                        failures[n] = f"process died with exit code {p.exitcode}"
                        log.error("nodes.%s: process died with exit code %s", n, p.exitcode)
                        self.stop_all()
            left = set(procs) - set(reports) - set(failures)
            if left and lossless <= set(reports) | set(failures) and not self.stopping:
                self.stop_all()  # only tap subscribers are left: they never see end-of-stream


# -- in each node's process --------------------------------------------------------------------------------
def _child_main(
    graph: GraphConfig,
    node: BuiltNode,
    endpoints: dict[str, Endpoints],
    reports: Any,
    go: Any,
    state_dir: str | None,
    plan: RestorePlan | None,
    grace_s: float,
    log_level: int,
    eos_taken: dict[tuple[str, str], Any],
) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    name = node.name

    async def main() -> dict[str, Any]:
        ctx = zmq.asyncio.Context()  # created after the process started: never shared across a fork
        try:
            async with NodeRunner(
                graph, node, endpoints, ctx, state_dir=state_dir, plan=plan, grace_s=grace_s, eos_taken=eos_taken
            ) as runner:
                reports.put(("ready", name, None))
                install_stop_handlers(asyncio.get_running_loop(), runner.stop_requested.set)

                async def wait_go() -> None:
                    while not go.is_set():  # noqa: ASYNC110 - a multiprocessing Event cannot be awaited
                        await asyncio.sleep(0.005)

                def started() -> None:
                    reports.put(("started", name, None))

                return await runner.run(wait_go, started)
        finally:
            terminate(ctx, f"nodes.{name}")

    try:
        report = asyncio.run(main())
    except SpikestreamError as exc:
        ignore_stop_signals()
        reports.put(("failed", name, str(exc)))
        raise SystemExit(1) from None
    ignore_stop_signals()
    reports.put(("report", name, report))


def _watch_parent(parent_pid: int) -> None:
    """Stop this child if its parent goes away, so that no orphan keeps running."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


# -- socket folders of earlier runs ------------------------------------------------------------------------
def _pid_namespace() -> str:
    """This process's pid namespace ("" where /proc does not say): a pid means nothing in another one."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _remove_stale_run_dirs() -> None:
    """Remove the socket folders of earlier runs whose runner died without cleaning up (``kill -9``, a
    power cut on an edge box without a tmpfs /tmp). Only folders of this user whose ``pid`` file names a
    runner of this pid namespace (containers sharing /tmp see other pids) are touched, and only when that
    process is gone; a reused pid merely keeps a folder for longer."""
    tmp = Path(tempfile.gettempdir())
    here = _pid_namespace()
    for folder in tmp.glob(_RUN_DIR_PREFIX + "*"):
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            namespace, _, pid_text = (folder / "pid").read_text().rpartition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):  # not a run folder of ours, or one another runner is removing
            continue
        if namespace != here:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            log.debug("removed %s, left by runner %d", folder, pid)
        except PermissionError:  # alive, another user's
            pass
