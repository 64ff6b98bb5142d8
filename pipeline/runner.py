"""Run a graph: every node in one process (inproc links) or one process per node (ipc or tcp links), or
one node of it alone while its peers run elsewhere.

A run goes one way: the graph is loaded (``pipeline.config``), validated once, each node built once
(``pipeline.validation``), then run: here for one process, by the supervisor (``pipeline.supervisor``)
for one process per node. Each node is driven by a ``NodeRunner`` (``pipeline.node_runner``).

Stopping (Ctrl-C, SIGTERM): sources stop producing and end their streams; the other nodes keep going until
the end-of-stream reaches them (or a grace period passes, ``pipeline.lifecycle``), then flush, checkpoint
and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq.asyncio

from .checkpoint import RestorePlan, cut_members, plan_restore
from .config import GraphConfig
from .endpoints import resolve_endpoints
from .errors import ConfigError, SpikestreamError
from .lifecycle import install_stop_handlers, stop_grace_s, terminate
from .node_runner import NodeRunner
from .summary import summarize
from .supervisor import run_processes
from .validation import BuiltNode, build_node, check_available, validate_graph

log = logging.getLogger("spikestream.runner")


def run_graph(graph: GraphConfig, *, state_dir: str | None = None) -> dict[str, Any]:
    """Validate ``graph``, run it with its configured transport and return the results document.

    What the nodes restore is read and checked once, before any of them starts (see
    :func:`pipeline.checkpoint.plan_restore`). A node that cannot start refuses the whole graph: the
    ``SpikestreamError`` names it, and no node has streamed or saved anything."""
    nodes = validate_graph(graph)
    check_available(graph, nodes)
    plan = plan_restore(state_dir if state_dir is not None else graph.state_dir, cut_members(graph))
    if plan is not None:
        plan.say(log)
    if graph.in_process:
        return asyncio.run(run_inproc(graph, nodes, state_dir=state_dir, plan=plan))
    return run_processes(graph, nodes, state_dir=state_dir, plan=plan)


def start_failure(name: str, exc: BaseException) -> SpikestreamError:
    """The error that refuses a graph whose node ``name`` could not start, naming the node."""
    text = str(exc)
    return SpikestreamError(text if f"nodes.{name}" in text else f"nodes.{name}: {text}")


async def run_inproc(
    graph: GraphConfig,
    nodes: Mapping[str, BuiltNode],
    *,
    state_dir: str | None = None,
    plan: RestorePlan | None = None,
) -> dict[str, Any]:
    """Run every validated node of ``graph`` as a task of this process's event loop."""
    grace_s = stop_grace_s()
    ctx = zmq.asyncio.Context()
    endpoints = resolve_endpoints(graph, None, pick_ports=True)
    runners: list[NodeRunner] = []
    go = asyncio.Event()
    try:
        async with contextlib.AsyncExitStack() as stack:
            # bind every input before anything connects (inproc needs the bound side first on old libzmq)
            binds_first = sorted(graph.nodes, key=lambda n: 0 if endpoints[n].in_bind or endpoints[n].tap_bind else 1)
            opened: dict[str, NodeRunner] = {}
            for name in binds_first:
                runner = NodeRunner(graph, nodes[name], endpoints, ctx, state_dir=state_dir, plan=plan, grace_s=grace_s)
                opened[name] = await stack.enter_async_context(runner)
            runners = [opened[name] for name in graph.nodes]

            def stop_all() -> None:
                log.info("stopping: ending the sources' streams")
                for r in runners:
                    r.stop_requested.set()

            stopped_by: list[str] = []
            install_stop_handlers(asyncio.get_running_loop(), stop_all, stopped_by)

            async def wait_go() -> None:
                await go.wait()

            not_started = {r.name for r in runners}

            def started_by(name: str) -> Callable[[], None]:
                def started() -> None:  # the go once every node has started
                    not_started.discard(name)
                    if not not_started:
                        go.set()

                return started

            tasks = {r.name: asyncio.ensure_future(r.run(wait_go, started_by(r.name))) for r in runners}
            log.info("graph %r running: %d nodes in one process", graph.name, len(runners))
            t0 = time.perf_counter()
            reports: dict[str, Any] = {}
            pending = set(tasks.values())
            lossless_done = False
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for name, task in tasks.items():
                    if task in done and name not in reports:
                        try:
                            reports[name] = task.result()
                        except Exception as exc:
                            if not go.is_set():  # it could not start: the graph is refused, nothing has streamed
                                for other in tasks.values():
                                    other.cancel()
                                await asyncio.gather(*tasks.values(), return_exceptions=True)
                                if isinstance(exc, SpikestreamError):
                                    raise start_failure(name, exc) from None
                                raise  # a bug: its traceback
                            # a node that failed is reported, the others stopped
                            reports[name] = {"type": graph.nodes[name].type, "error": str(exc)}
                            stop_all()
                # nodes fed only by taps never see end-of-stream: stop them once the lossless part has ended
                if not lossless_done and all(n in reports for n in graph.nodes if not graph.fed_by_taps_only(n)):
                    lossless_done = True
                    for r in runners:
                        r.stop_requested.set()
            wall = time.perf_counter() - t0
    finally:
        terminate(ctx, f"graph {graph.name!r}")
    return summarize(graph, reports, wall, stopped_by[0] if stopped_by else None)


def run_single_node(graph: GraphConfig, name: str, *, state_dir: str | None = None) -> dict[str, Any]:
    """Run node ``name`` of ``graph`` alone in this process (its peers run elsewhere)."""
    if name not in graph.nodes:
        msg = f"{graph.source}: no node named {name!r} (nodes: {', '.join(graph.nodes)})"
        raise ConfigError(msg)
    if graph.in_process:
        msg = f"{graph.source}: a node run alone needs transport ipc or tcp, not inproc"
        raise ConfigError(msg)
    node = build_node(graph, name)  # its peers may need what this box lacks: only this node is checked
    check_available(graph, {name: node})

    async def main() -> dict[str, Any]:
        ctx = zmq.asyncio.Context()
        endpoints = resolve_endpoints(graph, None, pick_ports=False)
        try:
            async with NodeRunner(graph, node, endpoints, ctx, state_dir=state_dir, watch_peers=True) as runner:
                stopped_by: list[str] = []
                install_stop_handlers(asyncio.get_running_loop(), runner.stop_requested.set, stopped_by)
                t0 = time.perf_counter()
                report = await runner.run()
                return summarize(graph, {name: report}, time.perf_counter() - t0, stopped_by[0] if stopped_by else None)
        finally:
            terminate(ctx, f"nodes.{name}")

    return asyncio.run(main())
