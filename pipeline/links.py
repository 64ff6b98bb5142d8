"""One node's links: its sockets, and the waits on its downstream peers at the start and end of a stream."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq.asyncio

from .config import GraphConfig
from .endpoints import Endpoints
from .message import Message
from .node import Counters
from .security import Authenticator, CurveSettings
from .transport import Inlet, Outlet
from .wire import encode


class TapOutlet(Outlet):
    """An outlet that can also publish on its tap alone: what a node says about itself (its counters, see
    ``pipeline.metrics``) for the nodes that watch it, never on the lossless links and not counted as its
    output."""

    async def publish(self, msg: Message) -> None:
        """Send ``msg`` on the tap only (nothing when the node has no tap); never waits: PUB drops when full."""
        if self._pub is not None:
            await self._pub.send_multipart(encode(msg), copy=False)


class NodeLinks:
    """A node's input (a PULL socket bound for its links, SUB sockets to the nodes it taps; none for a
    source), its outputs (a PUSH socket per downstream link, a PUB tap) and, for a CURVE input that
    admits listed keys only, the authenticator. Constructing it opens them all; ``close`` closes them."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        graph: GraphConfig,
        name: str,
        endpoints: Mapping[str, Endpoints],
        curve: CurveSettings,
        counters: Counters,
        *,
        watch_peers: bool = False,
    ) -> None:
        self.name = name
        self.downstream = graph.downstream(name)
        self.watch_peers = watch_peers
        self._link_index: dict[str, int] = {}  # downstream node -> its link in the outlet
        ep = endpoints[name]
        with contextlib.ExitStack() as opening:  # a socket that cannot open closes those opened before it
            self._auth = Authenticator(ctx, name, curve.allowed) if curve.allowed is not None else None
            if self._auth is not None:
                opening.callback(self._auth.stop)
            taps_in = [endpoints[a].tap_connect for a in graph.tap_upstream(name)]
            self.inlet = Inlet(
                ctx,
                name=name,
                bind=ep.in_bind,
                hwm=graph.hwm,
                links=graph.upstream(name),
                tap_connect=[t for t in taps_in if t],
                tap_hwm=graph.tap_hwm,
                counters=counters,
                curve=curve.server,
            )
            opening.callback(self.inlet.close)
            connect: list[str] = []
            for d in self.downstream:
                address = endpoints[d].in_connect
                if address:
                    self._link_index[d] = len(connect)
                    connect.append(address)
            self.outlet = TapOutlet(
                ctx,
                connect,
                hwm=graph.hwm,
                tap_bind=ep.tap_bind,
                tap_hwm=graph.tap_hwm,
                counters=counters,
                curve=curve.client,
                watch_peers=watch_peers,
            )
            opening.pop_all()

    def close(self, linger_ms: int | None = None) -> None:
        """Close the sockets. Messages still queued on the outputs are delivered within ``linger_ms``
        (None: however long that takes; the context's termination waits for them)."""
        self.inlet.close()
        self.outlet.close(linger_ms)
        if self._auth is not None:
            self._auth.stop()

    async def wait_for_downstream(self, stop_requested: asyncio.Event, log: logging.Logger) -> None:
        """A source run alone (``spikestream node``) streams once the nodes it feeds are connected (or it is
        asked to stop): a camera started before its encoder would otherwise drop what it cannot send."""
        said = False
        while not stop_requested.is_set():
            if await self.outlet.wait_connected(1.0):
                if said:
                    log.info("%s: downstream connected, streaming", self.name)
                return
            if not said:
                log.info("%s: waiting for the downstream nodes to connect", self.name)
                said = True

    async def wait_eos_taken(
        self,
        eos_taken: Mapping[tuple[str, str], Any],
        stop_requested: asyncio.Event,
        grace_s: float,
        log: logging.Logger,
    ) -> None:
        """Keep the sockets open until every downstream node has received this node's end-of-stream.

        Queued messages alone do not guarantee delivery: libzmq counts a message as sent once it is in
        the kernel's socket buffer, and when the sender then closes while the receiver is at its
        high-water mark, the receiver drops what was still in that buffer (libzmq issue 4660). A fast
        source that ends ahead of a slow stage lost the tail of its stream that way, end-of-stream
        included. So the sender waits for the receiver's word: under ``spikestream run`` the
        supervisor's flags (``eos_taken``, per link); for a node run alone, the downstream node closing
        its connection, which it does only once it has ended (or died: then nothing more can be delivered
        anyway). When stopping on request, a downstream node that does not confirm gets ``grace_s``."""
        waiting: dict[str, Callable[[], bool]] = {}
        for d in self.downstream:
            flag = eos_taken.get((self.name, d))
            if flag is not None:
                waiting[d] = flag.is_set
            elif self.watch_peers and d in self._link_index:
                waiting[d] = functools.partial(self.outlet.peer_gone, self._link_index[d])
        started = time.monotonic()
        give_up_at: float | None = None
        said = False
        while waiting:
            waiting = {d: done for d, done in waiting.items() if not done()}
            if not waiting:
                return
            now = time.monotonic()
            if stop_requested.is_set():
                give_up_at = give_up_at or now + grace_s
                if now > give_up_at:
                    log.warning(
                        "%s: %s did not confirm the end of the stream within %.0f s of the stop request; stopping "
                        "anyway (the last messages may not have arrived)",
                        self.name,
                        ", ".join(waiting),
                        grace_s,
                    )
                    return
            if not said and now - started > 2.0:
                log.info("%s: waiting for %s to take the end of the stream", self.name, ", ".join(waiting))
                said = True
            await asyncio.sleep(0.01)
