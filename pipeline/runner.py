"""Run a graph: every node in one process (inproc links) or one process per node (ipc or tcp links).

Each node is driven by a ``NodeRunner``: it binds its input, connects its outputs, reports ready, restores
its state and starts; once every node has started, the graph gives the go, and each node then either
pumps its source or receives, processes and forwards messages until every upstream node has
ended its stream. End-of-stream is a control message sent after the last data message on every lossless
link, so a node that has seen it from all its upstream nodes has seen everything. Control messages
(freeze, checkpoint, end-of-stream) travel in-band on the data links on purpose: they then take effect at
an exact, reproducible position of the stream, which learning determinism needs.

Stopping (Ctrl-C, SIGTERM): sources stop producing and end their streams; the other nodes keep going until
the end-of-stream reaches them (or a grace period passes), then flush, checkpoint and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import zmq.asyncio

from .checkpoint import (
    GENERATION_KEY,
    drop_generations,
    generation_path,
    load_state,
    newest_common_generation,
    save_generation,
    save_state,
)
from .config import GraphConfig, build_params
from .endpoints import Endpoints, resolve_endpoints
from .errors import CheckpointError, ConfigError, SpikestreamError
from .lifecycle import CONNECT_WAIT_S, ignore_stop_signals, install_stop_handlers, terminate
from .message import CHECKPOINT, CONTROL, EOS, control_message
from .node import Counters, Node, NodeContext, Source
from .registry import node_class
from .security import Authenticator, curve_settings
from .summary import summarize
from .transport import Inlet, Outlet

log = logging.getLogger("spikestream.runner")

STOP_GRACE_S = float(os.environ.get("SPIKESTREAM_STOP_GRACE_S", "10"))


def cut_members(graph: GraphConfig) -> list[str] | None:
    """The nodes whose checkpoints form consistent cuts (see ``pipeline.checkpoint``), or None.

    That needs one source and no node with two upstream links: a marker then reaches every node exactly
    once, after everything the source sent before it, and no node has to line up markers arriving on
    several inputs. Nodes fed only through taps (lossy, may miss a marker) are not members. In other
    graphs every node checkpoints on its own period instead."""
    sources = [n for n in graph.nodes if not graph.upstream(n) and not graph.tap_upstream(n)]
    if len(sources) != 1 or any(len(graph.upstream(n)) > 1 for n in graph.nodes):
        return None
    members, todo = [], [sources[0]]
    while todo:
        n = todo.pop()
        members.append(n)
        todo.extend(graph.downstream(n))
    return sorted(members)


class NodeRunner:
    """Drives one node: sockets, the receive/process/send loop, checkpoints, counters, shutdown."""

    def __init__(
        self,
        graph: GraphConfig,
        name: str,
        endpoints: dict[str, Endpoints],
        ctx: zmq.asyncio.Context,
        *,
        state_dir: str | None = None,
        eos_taken: Mapping[tuple[str, str], Any] | None = None,
        watch_peers: bool = False,
    ) -> None:
        self.graph = graph
        self.name = name
        self.spec = graph.nodes[name]
        #: per link (upstream, downstream): a flag the downstream node sets when the upstream's
        #: end-of-stream has reached it (see ``_await_eos_taken``), given by a supervisor
        self._eos_taken = eos_taken or {}
        #: without a supervisor (a node run alone): a downstream node closing its connection after this
        #: node's end-of-stream confirms that it took it
        self._watch_peers = watch_peers
        self._link_index: dict[str, int] = {}  # downstream node -> its link in the outlet
        self.ctx = ctx
        self.endpoints = endpoints
        self.state_dir = state_dir if state_dir is not None else graph.state_dir
        self.counters = Counters()
        self.stop_requested = asyncio.Event()
        self.error: str | None = None
        self.errors = 0
        cls = node_class(self.spec.type)
        if not issubclass(cls, Node):
            raise ConfigError(f"{graph.source}: nodes.{name}: type {self.spec.type!r} is not a Node")
        params = build_params(cls.Config, self.spec.params, f"{graph.source} [nodes.{name}]")
        self.context = NodeContext(
            name=name,
            graph=graph.name,
            upstream=tuple(graph.upstream(name)) + tuple(graph.tap_upstream(name)),
            downstream=tuple(graph.downstream(name)),
            log=logging.getLogger(f"spikestream.{name}"),
        )
        try:
            self.node: Node = cls(name, params, self.context)
        except (ValueError, TypeError) as exc:  # a parameter the node's own checks refused
            raise ConfigError(f"{graph.source}: nodes.{name}: {exc}") from None
        if self.node.is_source and graph.upstream(name):
            raise ConfigError(f"{graph.source}: nodes.{name} is a source and cannot have upstream links")
        if not self.node.is_source and not graph.upstream(name) and not graph.tap_upstream(name):
            raise ConfigError(f"{graph.source}: nodes.{name} has no input: add a link 'x -> {name}'")
        self._seq = 0
        self._restored = False  # no checkpoint is written unless the node's kept state was restored first
        cut = cut_members(graph)
        self._cut = cut if cut is not None and name in cut else None  # the members, when this node is one
        self._generation = 0  # of the last marker seen (sent, for the source)
        self._final_generation: int | None = None  # of the end-of-stream, once known
        self._last_checkpoint = time.monotonic()
        self._started = 0.0
        self.inlet: Inlet | None = None
        self.outlet: Outlet | None = None
        self._auth: Authenticator | None = None

    # -- state ----------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return Path(self.state_dir) / f"{self.name}.npz" if self.state_dir else None

    def restore(self) -> None:
        path = self.checkpoint_path
        if path is None:
            self._restored = True
            return
        if self._cut is not None:
            generation = newest_common_generation(path.parent, self._cut)
            if generation is not None:
                path = generation_path(path.parent, self.name, generation)
                # a crash left newer checkpoints of some nodes: the stream is replayed from the cut
                drop_generations(path.parent, self.name, above=generation)
            elif path.exists():
                self.node.log.warning(
                    "%s: no checkpoint generation completed by every node in %s: resuming from this node's "
                    "own last checkpoint (the nodes' states were taken at different points of the stream)",
                    self.name,
                    path.parent,
                )
        if not path.exists():
            self._restored = True
            return
        state = load_state(path)
        kept = state.pop(GENERATION_KEY, None)
        if kept is not None:
            self._generation = int(kept)
        try:
            if state:  # empty: the node had no state yet when the cut was taken
                self.node.restore(state)
        except (ValueError, KeyError, CheckpointError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit nodes.{self.name}: {exc} (a checkpoint of another graph or "
                "configuration? give this one its own --state folder)"
            ) from None
        self._restored = True
        self.node.log.info("%s: restored state from %s", self.name, path)

    def checkpoint(self, generation: int | None = None) -> None:
        """Save the node's state; with ``generation`` (a marker's), as that generation of a consistent cut."""
        path = self.checkpoint_path
        if path is None or not self._restored:  # a checkpoint that could not be restored is kept as it is
            return
        state = self.node.snapshot()
        if self._cut is not None and generation is not None:
            # a node without state still records that the marker passed: the cut is complete only then
            save_generation(path.parent, self.name, generation, state or {})
            common = newest_common_generation(path.parent, self._cut)
            if common is not None:
                drop_generations(path.parent, self.name, below=common)
        elif state is None:
            return
        else:
            save_state(path, state)
        self.counters.checkpoints += 1
        self._last_checkpoint = time.monotonic()

    # -- sockets ---------------------------------------------------------------------------------------
    def open(self) -> None:
        ep = self.endpoints[self.name]
        server, client, allowed = curve_settings(self.graph, self.name)
        if allowed is not None:
            self._auth = Authenticator(self.ctx, self.name, allowed)
        taps_in = [self.endpoints[a].tap_connect for a in self.graph.tap_upstream(self.name)]
        if ep.in_bind is not None or taps_in:
            self.inlet = Inlet(
                self.ctx,
                name=self.name,
                bind=ep.in_bind,
                hwm=self.graph.hwm,
                tap_connect=[t for t in taps_in if t],
                tap_hwm=self.graph.tap_hwm,
                counters=self.counters,
                curve=server,
            )
        connect: list[str] = []
        for d in self.graph.downstream(self.name):
            address = self.endpoints[d].in_connect
            if address:
                self._link_index[d] = len(connect)
                connect.append(address)
        self.outlet = Outlet(
            self.ctx,
            connect,
            hwm=self.graph.hwm,
            tap_bind=ep.tap_bind,
            tap_hwm=self.graph.tap_hwm,
            counters=self.counters,
            curve=client,
            watch_peers=self._watch_peers,
        )

    def close(self) -> None:
        """Close the sockets. After a normal end every queued message (end-of-stream included) is still
        delivered, however far behind the consumer is: the context's termination waits for it (see
        :func:`pipeline.lifecycle.terminate`). When stopping on request, a peer gets ``STOP_GRACE_S`` to take them."""
        if self.inlet is not None:
            self.inlet.close()
        if self.outlet is not None:
            self.outlet.close(int(STOP_GRACE_S * 1000) if self.stop_requested.is_set() else None)
        if self._auth is not None:
            self._auth.stop()

    # -- the loop --------------------------------------------------------------------------------------
    async def _send(self, msgs: Any, created_ns: int = 0) -> None:
        assert self.outlet is not None
        for msg in msgs:
            await self.outlet.send(msg.stamped(self.name, self._seq, created_ns or time.time_ns()))
            self._seq += 1

    def _handle_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        loud = self.errors <= 10 or self.errors % 1000 == 0  # a persistent fault must not flood the log
        if isinstance(exc, SpikestreamError) and loud:
            self.node.log.error("%s: %s: %s (errors so far: %d)", self.name, where, exc, self.errors)
        elif self.errors <= 3:
            self.node.log.exception("%s: %s failed", self.name, where)
        if self.error is None:
            self.error = f"{where}: {exc}"

    async def _pump_source(self) -> None:
        node = self.node
        assert isinstance(node, Source)
        agen: Any = node.produce()
        try:
            async for msg in agen:
                await self._send([msg])
                node.delivered += 1
                if self._cut is None:
                    self._maybe_checkpoint()
                elif self._period_elapsed():
                    await self._mark_cut()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a corrupt recording, a vanished camera: end the stream cleanly
            self._handle_error("source", exc)
        finally:
            with contextlib.suppress(Exception):
                await agen.aclose()

    def _period_elapsed(self) -> bool:
        period = self.graph.checkpoint_s
        return period > 0 and time.monotonic() - self._last_checkpoint >= period

    def _maybe_checkpoint(self) -> None:
        if self._period_elapsed():
            try:
                self.checkpoint()
            except CheckpointError as exc:
                self._handle_error("checkpoint", exc)

    async def _mark_cut(self) -> None:
        """Source of a consistent-cut graph: save the position as the next generation, then send its marker."""
        self._generation += 1
        try:
            self.checkpoint(self._generation)
        except CheckpointError as exc:
            self._last_checkpoint = time.monotonic()  # try again after a period, not on every message
            self._handle_error("checkpoint", exc)
            return
        await self._send([control_message(CHECKPOINT, generation=self._generation)])

    async def _consume(self) -> None:
        """Receive until every upstream node has sent end-of-stream. A stop request gives the
        upstream nodes ``STOP_GRACE_S`` to end their streams before this node stops anyway."""
        loop = asyncio.ensure_future(self._consume_loop())

        async def deadline() -> None:
            await self.stop_requested.wait()
            await asyncio.sleep(STOP_GRACE_S)
            if not loop.done():
                self.node.log.warning("%s: stopping without end-of-stream from all upstream nodes", self.name)
                self.node.interrupted = True
                loop.cancel()

        watchdog = asyncio.ensure_future(deadline())
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        finally:
            watchdog.cancel()

    async def _consume_loop(self) -> None:
        assert self.inlet is not None
        linked = set(self.graph.upstream(self.name))
        tapped = set(self.graph.tap_upstream(self.name))
        expected_eos = len(linked)
        eos_seen: set[str] = set()
        while expected_eos == 0 or len(eos_seen) < expected_eos:
            msg = await self.inlet.recv()
            if msg.created_ns:
                self.counters.latency.add(time.time_ns() - msg.created_ns)
            if msg.kind == CONTROL:
                if msg.stream not in linked and msg.stream not in tapped:
                    # a control message steers the node (end, checkpoint, freeze): only its upstream may send one
                    self.counters.malformed += 1
                    self.node.log.warning(
                        "%s: %s control message from %r, which is not upstream of this node, dropped",
                        self.name,
                        msg.command,
                        msg.stream,
                    )
                    continue
                body = msg.body or {}
                generation = body.get("generation")
                generation = generation if isinstance(generation, int) and self._cut is not None else None
                if msg.command == EOS:
                    if msg.stream not in linked:  # a tapped node's end: seen, but only links are waited for
                        continue
                    eos_seen.add(msg.stream)
                    taken = self._eos_taken.get((msg.stream, self.name))
                    if taken is not None:
                        taken.set()
                    if body.get("interrupted"):
                        self.node.interrupted = True
                    self._final_generation = generation
                    continue
                if msg.command == CHECKPOINT:
                    if generation is not None:
                        self._generation = generation
                    try:
                        self.checkpoint(generation)
                    except CheckpointError as exc:
                        self._handle_error("checkpoint", exc)
                try:
                    out = self.node.control(msg)
                except Exception as exc:
                    self._handle_error("control", exc)
                    out = ()
                await self._send([*out, replace(msg, stream="", seq=-1)], msg.created_ns)
                continue
            try:
                out = await self.node.process(msg)
            except Exception as exc:
                self._handle_error(f"processing {msg.kind} seq {msg.seq} from {msg.stream}", exc)
                continue
            if out:
                await self._send(out, msg.created_ns)
            if self._cut is None:
                self._maybe_checkpoint()

    async def _log_periodically(self) -> None:
        period = self.graph.log_every_s
        if period <= 0:
            return
        last_events = 0
        while True:
            await asyncio.sleep(period)
            c = self.counters
            moved = c.events_out if self.node.is_source else c.events_in
            rate = (moved - last_events) / period
            last_events = moved
            lat = c.latency.summary()
            self.node.log.info(
                "%s: %d msgs/%d events in, %d/%d out, %.2f M ev/s, gaps %d, drops %d, malformed %d%s",
                self.name,
                c.messages_in,
                c.events_in,
                c.messages_out,
                c.events_out,
                rate / 1e6,
                c.gaps,
                c.drops,
                c.malformed,
                f", latency p50 {lat['p50_ms']} ms" if lat else "",
            )

    async def _end_stream_unstarted(self, wait_go: Callable[[], Awaitable[None]] | None) -> None:
        """A node that could not start (a camera that is not there, a checkpoint that does not fit) tells its
        downstream nodes that its stream has ended, interrupted, so that they end now rather than after
        ``STOP_GRACE_S`` of waiting for it. It can fail before its downstream nodes have bound their inputs
        (a missing file fails at once; a node that loads its kernels takes a second): the go of the graph
        says that they have, and the message then leaves at once."""
        self.node.interrupted = True
        if self.outlet is None:
            return
        with contextlib.suppress(Exception):
            if wait_go is not None:
                await wait_go()
            await asyncio.wait_for(self._send([control_message(EOS, interrupted=True)]), STOP_GRACE_S)

    async def _finish_stream(self) -> bool:
        """Flush the node and send end-of-stream; returns whether it was sent. When stopping, a downstream
        peer that never takes the messages (gone, or refusing our key) gets ``STOP_GRACE_S``, not forever."""

        flushed = False

        async def finish() -> None:
            nonlocal flushed
            try:
                await self._send(await self.node.flush())
            except Exception as exc:
                self._handle_error("flush", exc)
            flushed = True
            body: dict[str, Any] = {"interrupted": True} if self.node.interrupted else {}
            if self._cut is not None and self.node.is_source:
                self._final_generation = self._generation + 1  # the end of the stream is a cut too
            if self._final_generation is not None:
                body["generation"] = self._final_generation
            if self._watch_peers:
                assert self.outlet is not None
                self.outlet.forget_disconnects()  # from here on, a peer closing means it has ended
            await self._send([control_message(EOS, **body)])

        if not self.stop_requested.is_set():
            await finish()
            return True
        try:
            await asyncio.wait_for(finish(), STOP_GRACE_S)
        except TimeoutError:
            self.node.log.warning(
                "%s: %s within %.0f s; stopping anyway",
                self.name,
                "downstream did not take the last messages" if flushed else "its flush did not finish",
                STOP_GRACE_S,
            )
            return False
        return True

    async def _await_eos_taken(self) -> None:
        """Keep the sockets open until every downstream node has received this node's end-of-stream.

        Queued messages alone do not guarantee delivery: libzmq counts a message as sent once it is in
        the kernel's socket buffer, and when the sender then closes while the receiver is at its
        high-water mark, the receiver drops what was still in that buffer (libzmq issue 4660). A fast
        source that ends ahead of a slow stage lost the tail of its stream that way, end-of-stream
        included. So the sender waits for the receiver's word: under ``spikestream run`` the
        supervisor's flags; for a node run alone, the downstream node closing its connection, which it
        does only once it has ended (or died: then nothing more can be delivered anyway). When stopping
        on request, a downstream node that does not confirm gets ``STOP_GRACE_S``."""
        outlet = self.outlet
        waiting: dict[str, Callable[[], bool]] = {}
        for d in self.graph.downstream(self.name):
            flag = self._eos_taken.get((self.name, d))
            if flag is not None:
                waiting[d] = flag.is_set
            elif self._watch_peers and outlet is not None and d in self._link_index:
                waiting[d] = functools.partial(outlet.peer_gone, self._link_index[d])
        started = time.monotonic()
        give_up_at: float | None = None
        said = False
        while waiting:
            waiting = {d: done for d, done in waiting.items() if not done()}
            if not waiting:
                return
            now = time.monotonic()
            if self.stop_requested.is_set():
                give_up_at = give_up_at or now + STOP_GRACE_S
                if now > give_up_at:
                    self.node.log.warning(
                        "%s: %s did not confirm the end of the stream within %.0f s of the stop request; stopping "
                        "anyway (the last messages may not have arrived)",
                        self.name,
                        ", ".join(waiting),
                        STOP_GRACE_S,
                    )
                    return
            if not said and now - started > 2.0:
                self.node.log.info("%s: waiting for %s to take the end of the stream", self.name, ", ".join(waiting))
                said = True
            await asyncio.sleep(0.01)

    async def _wait_for_downstream(self) -> None:
        """A source run alone (``spikestream node``) streams once the nodes it feeds are connected (or it is
        asked to stop): a camera started before its encoder would otherwise drop what it cannot send."""
        assert self.outlet is not None
        said = False
        while not self.stop_requested.is_set():
            if await self.outlet.wait_connected(1.0):
                if said:
                    self.node.log.info("%s: downstream connected, streaming", self.name)
                return
            if not said:
                self.node.log.info("%s: waiting for the downstream nodes to connect", self.name)
                said = True

    async def run(
        self,
        wait_go: Callable[[], Awaitable[None]] | None = None,
        started: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run the node to the end of its stream (or a stop request); return its report.

        ``started`` is called once the node has restored its state, started and its links to the nodes
        downstream are connected (or once it failed to start: it then only ends its stream); the graph gives
        the go (``wait_go``) when every node has called it, so a live source does not stream into a node
        that is still restoring, or wait for a connection, and fall behind at once."""
        logger = asyncio.ensure_future(self._log_periodically())
        try:
            try:
                self.restore()
                await self.node.start()
            except Exception:
                if started is not None:
                    started()
                await self._end_stream_unstarted(wait_go)
                raise
            if started is not None:
                if self.outlet is not None and not await self.outlet.wait_connected(CONNECT_WAIT_S):
                    self.node.log.warning(
                        "%s: a downstream node is not connected after %.0f s; starting anyway",
                        self.name,
                        CONNECT_WAIT_S,
                    )
                started()
            if wait_go is not None:
                await wait_go()
            elif self.node.is_source and self.outlet is not None:
                await self._wait_for_downstream()
            self._started = time.perf_counter()
            self._last_checkpoint = time.monotonic()  # periods count from the start of the stream
            if self.node.is_source:
                pump = asyncio.ensure_future(self._pump_source())
                stop = asyncio.ensure_future(self.stop_requested.wait())
                await asyncio.wait({pump, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not pump.done():
                    self.node.interrupted = True  # stopped before the end of its stream
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
                stop.cancel()
            else:
                await self._consume()
            if await self._finish_stream():
                await self._await_eos_taken()
        except CheckpointError as exc:
            self._handle_error("restore", exc)
            raise
        finally:
            logger.cancel()
            wall = time.perf_counter() - self._started if self._started else 0.0
            try:
                self.checkpoint(self._final_generation)
            except CheckpointError as exc:
                self._handle_error("final checkpoint", exc)
            try:
                await self.node.stop()
            except Exception as exc:
                self._handle_error("stop", exc)
        return self.report(wall)

    def report(self, wall_s: float) -> dict[str, Any]:
        return {
            "type": self.spec.type,
            "source": self.node.is_source,
            "wall_s": round(wall_s, 6),
            "counters": self.counters.as_dict() | {"errors": self.errors},
            "results": self.node.results(),
            "error": self.error,
            "interrupted": bool(self.node.interrupted),
        }


# -- one process -----------------------------------------------------------------------------------------
async def run_inproc(graph: GraphConfig, *, state_dir: str | None = None) -> dict[str, Any]:
    """Run every node of ``graph`` as a task of this process's event loop."""
    validate_graph(graph)
    ctx = zmq.asyncio.Context()
    endpoints = resolve_endpoints(graph, None, pick_ports=True)
    runners = [NodeRunner(graph, name, endpoints, ctx, state_dir=state_dir) for name in graph.nodes]
    # bind every input before anything connects (inproc needs the bound side first on old libzmq)
    ordered = sorted(runners, key=lambda r: 0 if r.endpoints[r.name].in_bind or r.endpoints[r.name].tap_bind else 1)
    go = asyncio.Event()
    try:
        for r in ordered:
            r.open()

        def stop_all() -> None:
            log.info("stopping: ending the sources' streams")
            for r in runners:
                r.stop_requested.set()

        install_stop_handlers(asyncio.get_running_loop(), stop_all)

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
                        reports[name] = {"type": graph.nodes[name].type, "error": str(exc)}
                        stop_all()
            # nodes fed only by taps never see end-of-stream: stop them once the lossless part has ended
            if not lossless_done and all(
                n in reports for n in graph.nodes if not (graph.tap_upstream(n) and not graph.upstream(n))
            ):
                lossless_done = True
                for r in runners:
                    r.stop_requested.set()
        wall = time.perf_counter() - t0
    finally:
        for r in runners:
            r.close()
        terminate(ctx, f"graph {graph.name!r}")
    return summarize(graph, reports, wall)


# -- one process per node ------------------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    """Stop this child if its parent goes away, so that no orphan keeps running."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _child_main(
    graph: GraphConfig,
    name: str,
    endpoints: dict[str, Endpoints],
    reports: Any,
    go: Any,
    state_dir: str | None,
    log_level: int,
    eos_taken: dict[tuple[str, str], Any],
) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    async def main() -> dict[str, Any]:
        ctx = zmq.asyncio.Context()  # created after the process started: never shared across a fork
        runner = NodeRunner(graph, name, endpoints, ctx, state_dir=state_dir, eos_taken=eos_taken)
        try:
            runner.open()
            reports.put(("ready", name, None))
            install_stop_handlers(asyncio.get_running_loop(), runner.stop_requested.set)

            async def wait_go() -> None:
                while not go.is_set():
                    await asyncio.sleep(0.005)

            def started() -> None:
                reports.put(("started", name, None))

            return await runner.run(wait_go, started)
        finally:
            runner.close()
            terminate(ctx, f"nodes.{name}")

    try:
        report = asyncio.run(main())
    except SpikestreamError as exc:
        ignore_stop_signals()
        reports.put(("failed", name, str(exc)))
        raise SystemExit(1) from None
    ignore_stop_signals()
    reports.put(("report", name, report))


def validate_graph(graph: GraphConfig) -> None:
    """Check every node's type and parameters, and that linked nodes fit each other, before any node
    starts, so that a typo or a mismatch is one clear error and not a crashed child or a lost run."""
    built: dict[str, tuple[type[Node], Any]] = {}
    for name, spec in graph.nodes.items():
        cls = node_class(spec.type)
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise ConfigError(f"{graph.source}: nodes.{name}: type {spec.type!r} is not a Node")
        built[name] = (cls, build_params(cls.Config, spec.params, f"{graph.source} [nodes.{name}]"))
        if cls.is_source and graph.upstream(name):
            raise ConfigError(f"{graph.source}: nodes.{name} is a source and cannot have upstream links")
        if not cls.is_source and not graph.upstream(name) and not graph.tap_upstream(name):
            raise ConfigError(f"{graph.source}: nodes.{name} has no input: add a link 'x -> {name}'")
        curve_settings(graph, name)
    _check_stream_facts(graph, built)


def _check_stream_facts(graph: GraphConfig, built: dict[str, tuple[type[Node], Any]]) -> None:
    """Pass each node's ``stream_facts`` down the links (sources first) and let every node refuse what it
    would receive. A fact two upstream nodes disagree on is dropped rather than guessed."""
    facts: dict[str, dict[str, Any]] = {}
    pending = list(graph.nodes)
    while pending:
        ready = [n for n in pending if all(u in facts for u in graph.upstream(n))]
        if not ready:  # a cycle: its nodes are left unchecked
            break
        for name in ready:
            pending.remove(name)
            received: dict[str, Any] = {}
            disputed: set[str] = set()
            for up in graph.upstream(name):
                for key, value in facts[up].items():
                    if key in received and received[key] != value:
                        disputed.add(key)
                    received.setdefault(key, value)
            for key in disputed:
                del received[key]
            cls, params = built[name]
            try:
                facts[name] = dict(cls.stream_facts(params, received))
            except ConfigError as exc:  # the node's own parameters
                raise ConfigError(f"{graph.source}: nodes.{name}: {exc}") from None
            except ValueError as exc:  # what it would receive
                ups = graph.upstream(name)
                what = " and ".join(f"nodes.{u}" for u in ups) + (" send" if len(ups) > 1 else " sends")
                raise ConfigError(f"{graph.source}: nodes.{name} does not fit what {what}: {exc}") from None


_RUN_DIR_PREFIX = "spikestream-"


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


def run_processes(
    graph: GraphConfig, *, state_dir: str | None = None, startup_timeout_s: float = 60.0
) -> dict[str, Any]:
    """Run each node of ``graph`` in its own process over ipc or tcp and supervise them."""
    if graph.in_process:
        raise ConfigError(f"{graph.source}: transport 'inproc' runs in one process; use ipc or tcp")
    validate_graph(graph)
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
                args=(graph, name, endpoints, reports_q, go, state_dir, level, eos_taken),
                name=f"spikestream-{name}",
                daemon=True,
            )
            for name in graph.nodes
        }
        stopping = False
        reports: dict[str, Any] = {}
        failures: dict[str, str] = {}

        def stop_all(*_: Any) -> None:
            nonlocal stopping
            if not stopping:
                log.info("stopping: asking every node to end its stream")
            stopping = True
            for n, p in procs.items():
                if n not in reports and n not in failures and p.is_alive() and p.pid:  # not those that ended
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGTERM)

        old = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGINT, signal.SIGTERM)}
        streaming = False
        try:
            for p in procs.values():
                p.start()
            # Two steps before the go: every node has opened its sockets ("ready", within the start-up
            # timeout), then every node has restored its state and started ("started": no deadline, a
            # large checkpoint or data set may take a while; said in the log after 10 s).
            ready: set[str] = set()
            started: set[str] = set()
            began = time.monotonic()
            said = False
            while len(started) < len(procs):
                try:
                    kind, name, payload = reports_q.get(timeout=0.2)
                except queue.Empty:
                    dead = [n for n, p in procs.items() if not p.is_alive()]
                    if stopping:
                        raise SpikestreamError(f"graph {graph.name!r} interrupted while starting") from None
                    late = len(ready) < len(procs) and time.monotonic() - began > startup_timeout_s
                    if dead or late:
                        stop_all()
                        what = ", ".join(dead) if dead else ", ".join(n for n in procs if n not in ready)
                        raise SpikestreamError(f"graph {graph.name!r} did not start: {what} failed to start") from None
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
                    stop_all()
                    raise SpikestreamError(payload if f"nodes.{name}" in payload else f"nodes.{name}: {payload}")
            t0 = time.perf_counter()
            go.set()
            streaming = True
            log.info(
                "graph %r running: %d nodes in separate processes over %s",
                graph.name,
                len(procs),
                graph.transport,
            )
            lossless = {n for n in graph.nodes if not (graph.tap_upstream(n) and not graph.upstream(n))}
            while len(reports) + len(failures) < len(procs):
                try:
                    kind, name, payload = reports_q.get(timeout=0.2)
                    if kind == "report":
                        reports[name] = payload
                    elif kind == "failed":
                        failures[name] = payload
                        stop_all()
                except queue.Empty:
                    pass
                for n, p in procs.items():
                    if n not in reports and n not in failures and not p.is_alive() and p.exitcode not in (0, None):
                        with contextlib.suppress(queue.Empty):
                            while True:  # a report may still be in flight
                                kind, name, payload = reports_q.get(timeout=0.2)
                                (reports if kind == "report" else failures)[name] = payload
                        if n not in reports and n not in failures:
                            failures[n] = f"process died with exit code {p.exitcode}"
                            log.error("nodes.%s: process died with exit code %s", n, p.exitcode)
                            stop_all()
                left = set(procs) - set(reports) - set(failures)
                if left and lossless <= set(reports) | set(failures) and not stopping:
                    stop_all()  # only tap subscribers are left: they never see end-of-stream
            wall = time.perf_counter() - t0
        finally:
            for p in procs.values():
                # A graph that failed or was stopped while starting has streamed nothing and changed no
                # state: its nodes (some still loading, some waiting for the go) are ended at once.
                p.join(timeout=STOP_GRACE_S + 5 if streaming else 0.5)
                if p.is_alive():
                    p.kill()
                    p.join()
            for sig, handler in old.items():
                signal.signal(sig, handler)
    for name, why in failures.items():
        reports[name] = {"type": graph.nodes[name].type, "error": why}
    return summarize(graph, reports, wall)


def run_graph(graph: GraphConfig, *, state_dir: str | None = None) -> dict[str, Any]:
    """Run ``graph`` with its configured transport and return the results document."""
    if graph.in_process:
        return asyncio.run(run_inproc(graph, state_dir=state_dir))
    return run_processes(graph, state_dir=state_dir)


def run_single_node(graph: GraphConfig, name: str, *, state_dir: str | None = None) -> dict[str, Any]:
    """Run node ``name`` of ``graph`` alone in this process (its peers run elsewhere)."""
    if name not in graph.nodes:
        raise ConfigError(f"{graph.source}: no node named {name!r} (nodes: {', '.join(graph.nodes)})")
    if graph.in_process:
        raise ConfigError(f"{graph.source}: a node run alone needs transport ipc or tcp, not inproc")

    async def main() -> dict[str, Any]:
        ctx = zmq.asyncio.Context()
        endpoints = resolve_endpoints(graph, None, pick_ports=False)
        runner = NodeRunner(graph, name, endpoints, ctx, state_dir=state_dir, watch_peers=True)
        try:
            runner.open()
            install_stop_handlers(asyncio.get_running_loop(), runner.stop_requested.set)
            t0 = time.perf_counter()
            report = await runner.run()
            return summarize(graph, {name: report}, time.perf_counter() - t0)
        finally:
            runner.close()
            terminate(ctx, f"nodes.{name}")

    return asyncio.run(main())
