"""``NodeRunner`` drives one node through its stream.

It binds the node's input, connects its outputs, restores its state and starts it; once the graph gives the
go it either pumps the node's source or receives, processes and forwards messages until every upstream node
has ended its stream; then it flushes the node, ends its own stream and saves a last checkpoint.
End-of-stream is a control message sent after the last data message on every lossless link, so a node that
has seen it from all its upstream nodes has seen everything. Control messages (freeze, checkpoint,
end-of-stream) travel in-band on the data links on purpose: they then take effect at an exact, reproducible
position of the stream, which learning determinism needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

import zmq.asyncio

from . import background
from .checkpoint import RestorePlan, cut_members
from .config import GraphConfig
from .endpoints import Endpoints
from .errors import CheckpointError, SpikestreamError
from .lifecycle import CONNECT_WAIT_S, stop_grace_s
from .links import NodeLinks
from .message import CHECKPOINT, CONTROL, EOS, EVENTS, METRICS, SPIKES, Message, control_message
from .metrics import MetricsPublisher, is_final
from .node import Counters, Source
from .node_checkpoints import NodeCheckpoints
from .progress import log_counters
from .shedding import LagShedder
from .validation import BuiltNode

_DATA = (EVENTS, SPIKES)  # what a node with max_age_ms may shed; labels and control always pass


class NodeRunner:
    """Drives one validated node: the stream through it, its checkpoints, its counters and its report.

    Constructing it creates the node and opens its links; as an async context manager it closes them on
    exit. ``grace_s`` (default: the stop grace period read now) bounds every wait once a stop is requested.
    ``plan`` is what the graph's consistent cuts restore, decided once for the graph (None: a node run alone
    decides itself).
    ``eos_taken`` holds, per link (upstream, downstream), the flag a downstream node sets when an upstream
    end-of-stream has reached it (given by the supervisor); without it (``watch_peers``, a node run alone) a
    downstream node closing its connection after the end-of-stream confirms that it took it."""

    def __init__(
        self,
        graph: GraphConfig,
        built: BuiltNode,
        endpoints: Mapping[str, Endpoints],
        ctx: zmq.asyncio.Context,
        *,
        state_dir: str | None = None,
        plan: RestorePlan | None = None,
        grace_s: float | None = None,
        eos_taken: Mapping[tuple[str, str], Any] | None = None,
        watch_peers: bool = False,
    ) -> None:
        self.graph = graph
        self.name = built.name
        self.type = graph.nodes[built.name].type
        self.grace_s = stop_grace_s() if grace_s is None else grace_s
        self._eos_taken = eos_taken or {}
        self.counters = Counters()
        self.stop_requested = asyncio.Event()
        self.error: str | None = None
        self.errors = 0
        self._seq = 0
        self._started = 0.0
        self._cpu_started = 0.0
        self.node = built.create(graph)
        self.checkpoints = NodeCheckpoints(
            self.node,
            state_dir if state_dir is not None else graph.state_dir,
            members=cut_members(graph),
            period_s=graph.checkpoint_s,
            counters=self.counters,
            plan=plan,
        )
        spec = graph.nodes[built.name]
        #: a side branch (fed by taps only, e.g. a dashboard): the nodes it sends to do not wait for its
        #: end-of-stream, and it ends once every node it taps has ended
        self.side_branch = graph.fed_by_taps_only(self.name)
        self._max_age_ns = int(spec.max_age_ms * 1e6)
        self._shedder = LagShedder(self.name, max(1, round(spec.max_age_ms * 1000)), self.node.log)
        self.links = NodeLinks(ctx, graph, self.name, endpoints, built.curve, self.counters, watch_peers=watch_peers)
        self._metrics = MetricsPublisher(
            self.name,
            self.type,
            self.node,
            lambda: self.counters.as_dict() | {"errors": self.errors},
            self.links.outlet.publish,
        )

    async def __aenter__(self) -> NodeRunner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the links. After a normal end every queued message (end-of-stream included) is still
        delivered, however far behind the consumer is: the context's termination waits for it (see
        :func:`pipeline.lifecycle.terminate`). When stopping on request, a peer gets ``grace_s`` to take them."""
        self.links.close(int(self.grace_s * 1000) if self.stop_requested.is_set() else None)

    # -- the run ---------------------------------------------------------------------------------------
    async def run(
        self,
        wait_go: Callable[[], Awaitable[None]] | None = None,
        started: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run the node to the end of its stream (or a stop request); return its report.

        ``started`` is called once the node has restored its state, started and its links to the nodes
        downstream are connected; the graph gives the go (``wait_go``) when every node has called it, so a
        live source does not stream into a node that is still restoring, or wait for a connection, and fall
        behind at once. A node that cannot start (a checkpoint that does not fit, a camera that is not
        there) raises instead, and its graph is refused: it never got the go, so no node has changed
        any state, and none saves. A node run alone (no ``started``) tells its downstream peers that its
        stream has ended before it raises."""
        logger = asyncio.ensure_future(
            log_counters(
                self.name,
                self.counters,
                every_s=self.graph.log_every_s,
                sent=self.node.is_source,
                log=self.node.log,
            )
        )
        tapped = self.graph.tapped(self.name)
        publisher = asyncio.ensure_future(self._metrics.run()) if tapped else None
        try:
            try:
                self.checkpoints.restore()
                self.node.warm()
                await self.node.start()
            except Exception:
                if started is None:
                    await self._end_stream_unstarted()
                raise
            if started is not None:
                if not await self.links.outlet.wait_connected(CONNECT_WAIT_S):
                    self.node.log.warning(
                        "%s: a downstream node is not connected after %.0f s; starting anyway",
                        self.name,
                        CONNECT_WAIT_S,
                    )
                started()
            if wait_go is not None:
                await wait_go()
            elif self.node.is_source:
                await self.links.wait_for_downstream(self.stop_requested, self.node.log)
            self._started = time.perf_counter()
            self._cpu_started = time.process_time()
            self.checkpoints.begin()
            if self.node.is_source:
                await self._run_source()
            else:
                await self._consume()
            if await self._finish_stream() and not self.side_branch:
                await self.links.wait_eos_taken(self._eos_taken, self.stop_requested, self.grace_s, self.node.log)
        finally:
            logger.cancel()
            if publisher is not None:
                publisher.cancel()
            self._shedder.finish()
            wall = time.perf_counter() - self._started if self._started else 0.0
            cpu = time.process_time() - self._cpu_started if self._started else 0.0
            self._checkpoint(self.checkpoints.final_generation, final=True)
            try:
                await self.node.stop()
            except Exception as exc:  # noqa: BLE001 - a stage's stop may fail any way; the report still goes out
                self._handle_error("stop", exc)
        report = self.report(wall, cpu)
        if tapped:  # the counters of the report, for whoever watches the tap
            with contextlib.suppress(Exception):
                await self._metrics.send(report["counters"], final=True)
        return report

    def report(self, wall_s: float, cpu_s: float = 0.0) -> dict[str, Any]:
        """The node's entry in the results: its counters, errors, results, ``wall_s`` of running and the
        CPU seconds its process used meanwhile (``cpu_s``: the node's own only when it runs in a process
        of its own, the whole graph's in one process)."""
        results = self.node.results()
        if self.counters.checkpoint_failures:
            said = (
                f"{self.counters.checkpoint_failures} checkpoints could not be written "
                "(a restart resumes from the last one written)"
            )
            results = {**results, "warnings": [*results.get("warnings", ()), said]}
        return {
            "type": self.type,
            "source": self.node.is_source,
            "wall_s": round(wall_s, 6),
            "cpu_s": round(cpu_s, 3),
            "counters": self.counters.as_dict() | {"errors": self.errors},
            "results": results,
            "error": self.error,
            "interrupted": bool(self.node.interrupted),
        }

    # -- sending and errors ----------------------------------------------------------------------------
    async def _send(self, msgs: Iterable[Message], created_ns: int = 0) -> None:
        for msg in msgs:
            await self.links.outlet.send(msg.stamped(self.name, self._seq, created_ns))
            self._seq += 1

    def _handle_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        loud = self.errors <= 10 or self.errors % 1000 == 0  # a persistent fault must not flood the log
        if isinstance(exc, SpikestreamError) and loud:
            self.node.log.error("%s: %s: %s (errors so far: %d)", self.name, where, exc, self.errors)
        elif self.errors <= 3:
            self.node.log.error("%s: %s failed", self.name, where, exc_info=exc)
        if self.error is None:
            self.error = f"{where}: {exc}"

    def _checkpoint(self, generation: int | None = None, *, final: bool = False) -> None:
        """Save a checkpoint. One that fails mid-stream is counted, said and retried by the checkpoints
        (learning goes on); the last one failing is the node's error: what it learned since is lost."""
        try:
            self.checkpoints.save(generation, final=final)
        except CheckpointError as exc:
            if final:
                self._handle_error("final checkpoint", exc)

    def _periodic_checkpoint(self) -> None:
        if self.checkpoints.due():
            self._checkpoint()

    # -- a source --------------------------------------------------------------------------------------
    async def _run_source(self) -> None:
        """Pump the source until its stream ends or a stop is requested."""
        pump = asyncio.ensure_future(self._pump_source())
        stop = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait({pump, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not pump.done():
            self.node.interrupted = True  # stopped before the end of its stream
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        stop.cancel()

    async def _pump_source(self) -> None:
        node = self.node
        assert isinstance(node, Source)
        agen: Any = node.produce()
        try:
            async for msg in agen:
                await self._send([msg])
                node.delivered += 1
                if not self.checkpoints.in_cut:
                    self._periodic_checkpoint()
                elif self.checkpoints.due():
                    await self._mark_cut()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - a corrupt recording, a vanished camera: end the stream cleanly
            self._handle_error("source", exc)
        finally:
            with contextlib.suppress(Exception):
                await agen.aclose()

    async def _mark_cut(self) -> None:
        """Source of a consistent-cut graph: save the position as the next generation, then send its marker."""
        try:
            generation = self.checkpoints.mark()
        except CheckpointError:  # counted, said and retried by the checkpoints; no marker this time
            return
        await self._send([control_message(CHECKPOINT, generation=generation)])

    # -- any other node --------------------------------------------------------------------------------
    async def _consume(self) -> None:
        """Receive until every upstream node has sent end-of-stream. A stop request gives the
        upstream nodes ``grace_s`` to end their streams before this node stops anyway."""
        loop = asyncio.ensure_future(self._consume_loop())

        async def deadline() -> None:
            await self.stop_requested.wait()
            await asyncio.sleep(self.grace_s)
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
        inlet = self.links.inlet
        senders = set(self.graph.upstream(self.name))
        # a side branch sending to this node (a dashboard's commands) has no end to wait for
        linked = {n for n in senders if not self.graph.fed_by_taps_only(n)}
        tapped = set(self.graph.tap_upstream(self.name))
        eos_seen: set[str] = set()
        tap_ended: set[str] = set()

        def ended() -> bool:
            if linked:
                return len(eos_seen) >= len(linked)
            return bool(tapped) and tap_ended >= tapped  # fed by taps only: every tapped node has ended

        while not ended():
            msg = await background.next_message(self.node, inlet, self._send, self._handle_error)
            if msg.kind == METRICS:  # a tapped node's counters: for the nodes that watch, never latency
                if is_final(msg):
                    tap_ended.add(str((msg.body or {}).get("node")))
                if self.node.takes_metrics:
                    await self._process(msg)
                continue
            if msg.created_ns:
                self.counters.latency.add(time.time_ns() - msg.created_ns)
            if msg.kind != CONTROL:
                await self._process(msg)
            elif msg.stream not in senders and msg.stream not in tapped:
                # a control message steers the node (end, checkpoint, freeze): only its upstream may send one
                self.counters.malformed += 1
                self.node.log.warning(
                    "%s: %s control message from %r, which is not upstream of this node, dropped",
                    self.name,
                    msg.command,
                    msg.stream,
                )
            elif msg.command == EOS:
                if msg.stream in linked:  # a tapped node's end: seen, but only links are waited for
                    eos_seen.add(msg.stream)
                    self._end_of_upstream(msg)
            else:  # handed to the node; forwarded only when it came over a link, never from a tap
                await self._control(msg, forward=msg.stream in senders)

    async def _process(self, msg: Message) -> None:
        if self._max_age_ns and msg.kind in _DATA:
            stale = time.time_ns() - msg.created_ns > self._max_age_ns
            self._shedder.note(msg.count if stale else 0, time.monotonic())
            if stale:  # the graph fell behind: computing on it would only add to the lag
                self.counters.shed += msg.count
                return
            self._shedder.emitted += msg.count
        try:
            out = await self.node.process(msg)
        except Exception as exc:  # noqa: BLE001 - a stage's bug costs one message, not the graph
            self._handle_error(f"processing {msg.kind} seq {msg.seq} from {msg.stream}", exc)
            return
        if out:
            await self._send(out, msg.created_ns)
        if not self.checkpoints.in_cut and self.checkpoints.due():
            await background.drain(self.node, self._send, self._handle_error)
            self._checkpoint()

    def _end_of_upstream(self, msg: Message) -> None:
        body = msg.body or {}
        taken = self._eos_taken.get((msg.stream, self.name))
        if taken is not None:
            taken.set()
        if body.get("interrupted"):
            self.node.interrupted = True
        self.checkpoints.final_generation = self.checkpoints.marker(body)

    async def _control(self, msg: Message, *, forward: bool = True) -> None:
        # every output of the messages before it goes out first
        await background.drain(self.node, self._send, self._handle_error)
        if msg.command == CHECKPOINT:
            generation = self.checkpoints.marker(msg.body or {})
            if generation is not None:
                self.checkpoints.generation = generation
            self._checkpoint(generation)
        try:
            out = self.node.control(msg)
        except Exception as exc:  # noqa: BLE001 - counted and logged like a failed message
            self._handle_error("control", exc)
            out = ()
        # (a tap's control forwarded into the links would come back to a tapping node that feeds the graph)
        await self._send([*out, replace(msg, stream="", seq=-1)] if forward else out, msg.created_ns)

    # -- the end ---------------------------------------------------------------------------------------
    async def _end_stream_unstarted(self) -> None:
        """A node run alone that could not start (a camera that is not there, a checkpoint that does not
        fit) tells its downstream peers that its stream has ended, interrupted, so that they end now rather
        than after ``grace_s`` of waiting for it."""
        self.node.interrupted = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._send([control_message(EOS, interrupted=True)]), self.grace_s)

    async def _finish_stream(self) -> bool:
        """Flush the node and send end-of-stream; returns whether it was sent. When stopping, a downstream
        peer that never takes the messages (gone, or refusing our key) gets ``grace_s``, not forever."""

        flushed = False

        async def finish() -> None:
            nonlocal flushed
            await background.drain(self.node, self._send, self._handle_error)
            try:
                await self._send(await self.node.flush())
            except Exception as exc:  # noqa: BLE001 - end-of-stream must still go downstream
                self._handle_error("flush", exc)
            flushed = True
            body: dict[str, Any] = {"interrupted": True} if self.node.interrupted else {}
            generation = self.checkpoints.end_generation()
            if generation is not None:
                body["generation"] = generation
            if self.links.watch_peers:
                self.links.outlet.forget_disconnects()  # from here on, a peer closing means it has ended
            if not self.side_branch:  # (whom a side branch sends to does not wait for its end)
                await self._send([control_message(EOS, **body)])

        if not self.stop_requested.is_set():
            await finish()
            return True
        try:
            await asyncio.wait_for(finish(), self.grace_s)
        except TimeoutError:
            self.node.log.warning(
                "%s: %s within %.0f s; stopping anyway",
                self.name,
                "downstream did not take the last messages" if flushed else "its flush did not finish",
                self.grace_s,
            )
            return False
        return True
