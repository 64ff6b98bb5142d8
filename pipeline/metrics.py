"""A node's counters as ``metrics`` messages on its tap: how a viewer (a dashboard) learns how every stage
is doing without asking any of them.

A tapped node publishes its counters on its tap every ``METRICS_EVERY_S`` seconds while it runs, and once
more when it has ended, with ``final`` set and the counters of its report (what the results file says).
They go on the tap only, on a stream of their own (``<node>#metrics``): the lossless links never carry
them, a subscriber counts the ones its tap lost as ``drops``, and nodes see them only when they ask
(``Node.takes_metrics``). A node fed by taps only takes the final ones as the end of what it taps.

Each message also carries what the node lets a viewer see of its state (``Node.watch``: learning on or
off, spikes per map ...), its bulky part (learned kernels as images) every ``FULL_VIEW_EVERY_S`` only.
Nothing of this runs for a node without a tap. Every message is a whole snapshot, stamped with the wall
clock (``wall_ns``): one lost on a busy tap is replaced by the next, and a viewer can say how old the
counters it shows are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .message import METRICS, Message
from .node import Node

#: Seconds between two metrics messages of a running node.
METRICS_EVERY_S = 1.0
#: Seconds between two metrics messages that carry the bulky part of a node's view (``Node.watch``).
FULL_VIEW_EVERY_S = 3.0


def metrics_stream(node: str) -> str:
    """The stream id of ``node``'s metrics messages (not its own: its data's sequence stays whole)."""
    return f"{node}#metrics"


def counters_message(
    node: str, node_type: str, counters: dict[str, Any], *, final: bool = False, view: dict[str, Any] | None = None
) -> Message:
    """A metrics message saying that ``node`` (of type ``node_type``) has these ``counters`` now
    (``final``: they are those of its report), and what it shows of its state (``view``)."""
    body = {"node": node, "type": node_type, "counters": counters, "final": final, "wall_ns": time.time_ns()}
    if view:
        body["view"] = view
    return Message(METRICS, body=body, created_ns=time.time_ns())


def is_final(msg: Message) -> bool:
    """Whether ``msg`` is the final metrics message of a node that has ended."""
    return msg.kind == METRICS and bool((msg.body or {}).get("final"))


class MetricsPublisher:
    """Publishes the metrics messages of ``node`` (named ``name``, of type ``node_type``) with ``publish``
    (its tap): ``run`` every ``METRICS_EVERY_S`` until cancelled, ``send`` one now."""

    def __init__(
        self,
        name: str,
        node_type: str,
        node: Node,
        counters: Callable[[], dict[str, Any]],
        publish: Callable[[Message], Awaitable[None]],
    ) -> None:
        self.name = name
        self.type = node_type
        self.node = node
        self.counters = counters
        self.publish = publish
        self._seq = 0
        self._full_at = -FULL_VIEW_EVERY_S
        self._failed = False

    def _view(self, *, final: bool) -> dict[str, Any]:
        now = time.monotonic()
        full = final or now - self._full_at >= FULL_VIEW_EVERY_S
        if full:
            self._full_at = now
        try:
            return self.node.watch(full=full)
        except Exception as exc:  # noqa: BLE001 - what a viewer sees must never stop the node or its counters
            if not self._failed:
                self._failed = True
                logging.getLogger("spikestream").warning("%s: its view for the tap failed: %s", self.name, exc)
            return {}

    async def send(self, counters: dict[str, Any] | None = None, *, final: bool = False) -> None:
        """Publish the node's counters (``counters``, else the current ones) and its view now."""
        view = self._view(final=final)
        msg = counters_message(self.name, self.type, counters or self.counters(), final=final, view=view)
        await self.publish(msg.stamped(metrics_stream(self.name), self._seq))
        self._seq += 1

    async def run(self) -> None:
        """Publish every ``METRICS_EVERY_S`` until cancelled."""
        while True:
            await asyncio.sleep(METRICS_EVERY_S)
            await self.send()
