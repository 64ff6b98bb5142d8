"""The ``Node`` base class: what every stage implements, and the counters the runtime keeps for it.

Lifecycle, driven by the runtime (``pipeline.node_runner``)::

    node = Cls(name, config, context)
    node.restore(state)           # if a checkpoint exists
    await node.start()
    await node.process(msg) ...   # for each data message (sources: ``async for msg in node.produce()``)
    node.control(msg)             # for each control message other than end-of-stream
    await node.flush()            # once every upstream has ended its stream
    node.snapshot()               # periodically, on request, and at the end
    await node.stop()

``process``/``flush``/``control`` return the messages to send downstream; the runtime stamps them with
the node's stream id and sequence numbers. A node never talks to sockets itself.

Background work (a node whose outputs are computed in other threads): while ``background_pending()`` is
true the runtime waits for whichever comes first, the next input message or ``background_ready()``, and
sends what that returns at once, without waiting for another input. Before a control message, a
checkpoint and ``flush()`` it awaits ``background_ready()`` until nothing is pending, so that every output
of the messages before them has gone out first. The default has no background work and costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .message import Message


@dataclass(frozen=True, kw_only=True)
class NoParams:
    """Config of a node without parameters."""


@dataclass
class NodeContext:
    """What the runtime tells a node about its place in the graph."""

    name: str
    graph: str
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("spikestream"))


class Node:
    """A stage of the graph. Subclasses set ``Config`` (a frozen dataclass) and override the hooks."""

    Config: ClassVar[type] = NoParams
    is_source: ClassVar[bool] = False
    #: Whether ``process`` receives the ``metrics`` messages (``pipeline.metrics``) of the nodes this node
    #: taps: a viewer of the graph does; any other node never sees them.
    takes_metrics: ClassVar[bool] = False

    def __init__(self, name: str, config: Any, context: NodeContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.log = context.log

    @classmethod
    def stream_facts(cls, config: Any, received: Mapping[str, Any]) -> Mapping[str, Any]:  # noqa: ARG003 - a hook
        """What is known, before anything runs, about the stream this node sends, given its config and the
        facts of the stream it receives. The runner checks a graph with these, link by link, before any
        node starts: raise ``ValueError`` saying why when ``received`` cannot fit this node (``ConfigError``
        when its own parameters are wrong). The facts are plain values under names the stages share
        (``sensor`` (width, height) of events, ``shape`` (channels, height, width) of spikes, ``classes``
        of labels); the pipeline only passes them on. Default: the node's output carries its input's
        facts (relays, sinks)."""
        return received

    @classmethod
    def check_available(cls, name: str, config: Any) -> None:
        """Check, before the graph starts, that what node ``name`` reads from this machine is there (a data
        file or folder): raise ``ConfigError`` naming the key and where it looked. Cheap checks only (does
        it exist?); reading it is ``start``'s. A graph run whole checks every node, a node run alone itself.
        Default: nothing to check."""

    def warm(self) -> None:
        """Load compiled kernels, so that the first live batch does not wait for them. Called once the
        node's state is restored, before ``start``: a node whose checkpoint does not fit is refused before
        it spends seconds compiling. Default: nothing to load."""

    async def start(self) -> None:
        """Open resources (files, devices, brokers). Called once before the first message."""

    async def process(self, msg: Message) -> Sequence[Message]:  # noqa: ARG002 - a hook: the default sends nothing
        """Handle one data message (events, spikes, labels, predictions, metrics)."""
        return ()

    def background_pending(self) -> bool:
        """Whether outputs of earlier messages are still being computed in the background (or are done and
        not yet returned). Called for every message: keep it cheap. Default: never."""
        return False

    async def background_ready(self) -> Sequence[Message]:
        """Wait for background outputs and return those that are done, in order (empty once nothing is
        pending). Must be safe to cancel while it waits: the runtime cancels it when an input message
        comes first. An output carries the ``created_ns`` of the message it came from, so that latencies
        stay true; an exception is counted and logged like a failed message. ``process`` may return
        finished background outputs too (before its own); the order must stay the input order."""
        return ()

    def control(self, msg: Message) -> Sequence[Message]:  # noqa: ARG002 - a hook: the default sends nothing
        """Handle a control message (freeze, unfreeze, checkpoint). It is forwarded downstream anyway."""
        return ()

    #: set before ``flush()`` when the stream was stopped before its end (a stop request, here or upstream)
    #: rather than ended: the run may be resumed from the checkpoints, so ``flush()`` must not close what
    #: the rest of the stream would continue (a classifier's open segment, say)
    interrupted: bool = False

    async def flush(self) -> Sequence[Message]:
        """Every upstream has ended (or stopped: see ``interrupted``): emit what is still pending. Called once."""
        return ()

    def snapshot(self) -> dict[str, np.ndarray] | None:
        """All learned and dynamic state as named arrays, or ``None`` if the node has none."""
        return None

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Load a snapshot; raise ``CheckpointError`` if it does not fit the configuration."""

    def watch(self, *, full: bool) -> dict[str, Any]:  # noqa: ARG002 - a hook: the default shows nothing
        """What a viewer of the graph (a dashboard) sees of the node's state besides its counters, as plain
        JSON values: ``learning`` on or off, say. Called only while the node is tapped, once a second
        between messages (``pipeline.metrics``): keep it cheap, and start any bookkeeping it needs on the
        first call, so that an untapped node pays nothing. ``full``: add the bulky part (learned weights as
        images), asked every few seconds only."""
        return {}

    def results(self) -> dict[str, Any]:
        """Figures for the results file (merged at its top level), e.g. accuracies. A ``warnings`` list of
        strings stays with the node and is printed with the run's summary (say, data that was lost)."""
        return {}

    async def stop(self) -> None:
        """Release resources. Called once, also after errors."""


class Source(Node):
    """A node without inputs: it produces messages until its data ends or it is asked to stop."""

    is_source = True
    #: messages of ``produce()`` that the runner has sent on (counted by the runner, after each send); a
    #: source whose stream is deterministic saves it in its snapshot to resume exactly where it stopped
    delivered: int = 0

    def produce(self) -> AsyncIterator[Message]:
        """The source's messages, in order, until its data ends (or for ever, for a live source).

        An async iterator: each step awaits what it needs (a device, a thread for file I/O) and never blocks
        the loop. The runner sends every message on and counts it in ``delivered``."""
        raise NotImplementedError

    @property
    def events_total(self) -> int | None:
        """Events the source will produce in total, when known (for progress output)."""
        return None


class LatencyStats:
    """A bounded reservoir of latencies (ns) with percentiles."""

    def __init__(self, size: int = 8192) -> None:
        self._buf = np.zeros(size, dtype=np.int64)
        self._n = 0

    def add(self, value_ns: int) -> None:
        """Record one latency (ns); the oldest is overwritten once the reservoir is full."""
        self._buf[self._n % self._buf.shape[0]] = value_ns
        self._n += 1

    def summary(self) -> dict[str, float]:
        """The p50, p90, p99 and max of the kept latencies in ms (empty when none was recorded)."""
        n = min(self._n, self._buf.shape[0])
        if n == 0:
            return {}
        p50, p90, p99 = np.percentile(self._buf[:n], [50, 90, 99]) / 1e6
        return {
            "p50_ms": round(p50, 3),
            "p90_ms": round(p90, 3),
            "p99_ms": round(p99, 3),
            "max_ms": round(float(self._buf[:n].max()) / 1e6, 3),
        }


@dataclass
class Counters:
    """Per-node counters reported in logs and the results file. ``events_*`` count the records of
    events and spikes messages; labels, predictions and control count as messages only."""

    messages_in: int = 0
    messages_out: int = 0
    events_in: int = 0
    events_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    gaps: int = 0
    missing: int = 0
    drops: int = 0
    #: messages dropped on a lossless link because their sequence number was already seen (a peer sending
    #: twice, two senders under one name)
    duplicates: int = 0
    #: messages dropped on a lossless link whose sequence number jumps further ahead than the link can lose
    #: (``transport.jump_limit``): not counted as ``missing``, since no link loses that many
    jumps: int = 0
    #: events (and spikes) of data messages shed because they arrived older than the node's ``max_age_ms``
    shed: int = 0
    #: messages dropped as malformed: undecodable, from a stream that is not an upstream link of the node,
    #: or control from a node that is not upstream
    malformed: int = 0
    checkpoints: int = 0
    #: how long the last checkpoint took (snapshot and write), ms
    checkpoint_ms: float = 0.0
    #: when the last checkpoint was written, in Unix seconds (0: none yet)
    checkpoint_at: float = 0.0
    #: checkpoints that could not be written (a full disk, a read-only folder); each is retried
    checkpoint_failures: int = 0
    latency: LatencyStats = field(default_factory=LatencyStats)

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain values for logs and the results file, latency as its summary."""
        d = {k: v for k, v in self.__dict__.items() if k != "latency"}
        d["latency"] = self.latency.summary()
        return d
