"""A buffered MQTT publisher: the caller never waits for the broker, and nothing is lost silently.

``enqueue`` only appends to a bounded buffer (``buffer_size`` messages; when full the oldest is dropped
and counted). A background task owns the ``aiomqtt.Client``: it connects, publishes the buffer with up to
``window`` messages in flight, and on any failure reconnects with exponential backoff (``reconnect_min_s``
doubling up to ``reconnect_max_s``), counted and logged by its ``BrokerLink``. A message leaves the buffer
only when the broker acknowledged it (QoS 1) or it was written to the socket (QoS 0); messages in flight
when the connection dies go back to the front of the buffer and are sent again after reconnecting. So at
QoS 1 delivery is *at least once*: a message whose acknowledgement was lost arrives twice.

Status: ``<prefix>/status`` (retained) carries the owner's ``status("online")`` on every connect and every
``status_period_s``, and ``status("offline")`` when the publisher stops; the broker publishes
``{"state": "offline", "node": ...}`` as the last will when the connection dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
from typing_extensions import override

from nodes.sinks.predictions import to_json

from .broker import BrokerParams
from .link import BrokerLink

STATUS_RETAIN = True


@dataclass(frozen=True, kw_only=True)
class PublisherParams(BrokerParams):
    """How the publisher buffers and delivers (and its broker connection, see ``BrokerParams``)."""

    buffer_size: int = 10_000  #: messages held while the broker is slow or away (>= 1); oldest dropped
    window: int = 64  #: messages in flight (published, not yet acknowledged) at once (>= 1)
    ack_timeout_s: float = 5.0  #: a publish not acknowledged within this is treated as lost (> 0)
    status_period_s: float = 30.0  #: republish the retained status this often, seconds (0 = only on connect)
    flush_timeout_s: float = 10.0  #: at the end of the stream, wait at most this long for the buffer to drain
    stop_timeout_s: float = 2.0  #: when stopping, wait at most this long to say "offline" and disconnect

    @override
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buffer_size < 1:
            msg = f"buffer_size must be >= 1, got {self.buffer_size}"
            raise ValueError(msg)
        if self.window < 1:
            msg = f"window must be >= 1, got {self.window}"
            raise ValueError(msg)
        for name in ("ack_timeout_s", "flush_timeout_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                msg = f"{name} must be > 0, got {getattr(self, name)}"
                raise ValueError(msg)
        if self.status_period_s < 0:
            msg = f"status_period_s must be >= 0, got {self.status_period_s}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One buffered MQTT message (``kind`` names the counter its delivery goes to)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str


@dataclass
class PublisherCounters:
    """What the publisher reports."""

    enqueued: int = 0  #: messages put in the buffer
    dropped: int = 0  #: messages dropped because the buffer was full
    resent: int = 0  #: messages sent again after a failed or unacknowledged publish
    status_published: int = 0  #: status messages delivered


class BufferedPublisher:
    """Delivers enqueued messages from a background task (see the module docstring).

    ``status(state)`` gives the body of the status message; the owner (a node) knows what to put in it.
    Connections, failures and the last error are counted by ``link``."""

    def __init__(
        self, node: str, params: PublisherParams, log: logging.Logger, status: Callable[[str], dict[str, Any]]
    ) -> None:
        self.node = node
        self.params = params
        self.log = log
        self.status = status
        self.c = PublisherCounters()
        self.delivered: Counter[str] = Counter()  #: messages delivered, by ``Outgoing.kind``
        self.status_topic = f"{params.prefix}/status"
        will = aiomqtt.Will(self.status_topic, to_json({"state": "offline", "node": node}), qos=1, retain=True)
        self.link = BrokerLink(node, params, log, will=will, max_inflight=params.window)
        self._buffer: deque[Outgoing] = deque()
        self._inflight = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._closing = False
        self._connected = False
        self._task: asyncio.Task[None] | None = None

    # -- what the owner calls -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the connection loop as a task of the running event loop; it delivers the buffer."""
        self._task = asyncio.ensure_future(self._connection_loop())

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up now."""
        return self._connected

    @property
    def last_error(self) -> str | None:
        """The last connection error, as said in the log (``None`` while none occurred)."""
        return self.link.last_error

    @property
    def pending(self) -> int:
        """Messages not yet delivered (buffered or in flight)."""
        return len(self._buffer) + self._inflight

    def enqueue(self, item: Outgoing) -> None:
        """Buffer ``item`` for delivery; never blocks. A full buffer drops its oldest message."""
        if len(self._buffer) >= self.params.buffer_size:
            self._buffer.popleft()
            self.c.dropped += 1
            if self.c.dropped == 1 or self.c.dropped % 1000 == 0:
                self.log.warning(
                    "%s: MQTT buffer full (%d messages, broker %s %s): dropping the oldest (%d dropped so far)",
                    self.node,
                    self.params.buffer_size,
                    self.params.broker,
                    "connected" if self._connected else "not connected",
                    self.c.dropped,
                )
        self._buffer.append(item)
        self.c.enqueued += 1
        self._drained.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Wait (at most ``flush_timeout_s``) until everything buffered is delivered."""
        try:
            await asyncio.wait_for(self._drained.wait(), self.params.flush_timeout_s)
        except TimeoutError:
            self.log.warning(
                "%s: %d MQTT messages still undelivered to %s after %.1f s%s",
                self.node,
                self.pending,
                self.params.broker,
                self.params.flush_timeout_s,
                f" (last error: {self.last_error})" if self.last_error else "",
            )

    async def stop(self) -> None:
        """Deliver what is left and say "offline" (at most ``stop_timeout_s``), then disconnect."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        if not self._connected:  # nothing can be delivered or said: do not wait for a reconnect
            self._task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.params.stop_timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        self._connected = False

    def warnings(self) -> list[str]:
        """One line saying which messages never reached the broker, if any did not."""
        lost = []
        if self.c.dropped:
            lost.append(f"{self.c.dropped:,} dropped when the buffer was full")
        if self.pending:
            lost.append(f"{self.pending:,} still buffered at the end")
        if not lost:
            return []
        why = f" (last error: {self.last_error})" if self.last_error else ""
        return [f"MQTT messages not delivered to {self.params.broker}: {', '.join(lost)}{why}"]

    # -- the buffer -----------------------------------------------------------------------------------------
    def _requeue(self, items: list[Outgoing]) -> None:
        """Put undelivered items back at the front, in their order; the buffer bound still holds."""
        for item in reversed(items):
            self._buffer.appendleft(item)
        self.c.resent += len(items)
        while len(self._buffer) > self.params.buffer_size:
            self._buffer.popleft()
            self.c.dropped += 1

    # -- the connection task --------------------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        link = self.link
        while True:
            try:
                async with link.client() as client:
                    link.up()
                    self._on_connected()
                    try:
                        await self._serve(client)
                    finally:
                        self._connected = False
                return  # closing: everything delivered and "offline" said
            except aiomqtt.MqttError as exc:
                link.down(exc, closing=self._closing)
            except Exception as exc:  # noqa: BLE001 - a bug or an odd socket error: keep the pipeline up, say so, retry
                link.broke(exc)
                self._connected = False
            if self._closing:
                return
            await link.wait_before_retry()

    def _on_connected(self) -> None:
        self._connected = True
        if self.link.reconnects:
            self.log.info(
                "%s: reconnected to MQTT broker %s (%d reconnects); %d messages to deliver",
                self.node,
                self.params.broker,
                self.link.reconnects,
                self.pending,
            )
        else:
            self.log.info("%s: connected to MQTT broker %s", self.node, self.params.broker)

    async def _publish_status(self, client: aiomqtt.Client, state: str) -> None:
        await client.publish(
            self.status_topic,
            to_json(self.status(state)),
            qos=1,
            retain=STATUS_RETAIN,
            timeout=self.params.ack_timeout_s,
        )
        self.c.status_published += 1

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Deliver while watching the connection: an idle publisher notices a lost broker at once (and then
        buffers), not only at its next publish."""
        deliver = asyncio.ensure_future(self._deliver(client))
        watch = asyncio.ensure_future(self._watch(client))
        try:
            await asyncio.wait({deliver, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (deliver, watch):
                task.cancel()
            await asyncio.gather(deliver, watch, return_exceptions=True)
        for task in (deliver, watch):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Return never; raise ``MqttError`` when the connection drops (the publisher subscribes to
        nothing, so the message iterator only ever ends that way)."""
        async for _ in client.messages:
            pass

    async def _deliver(self, client: aiomqtt.Client) -> None:
        """Publish the buffer until closing (then say offline) or until the connection fails (raises)."""
        cfg = self.params
        await self._publish_status(client, "online")
        next_status = time.monotonic() + cfg.status_period_s
        while True:
            if not self._buffer:
                self._drained.set()
                if self._closing:
                    await self._publish_status(client, "offline")
                    return
                self._wake.clear()
                wait_s = max(0.0, next_status - time.monotonic()) if cfg.status_period_s > 0 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait_s)
            if cfg.status_period_s > 0 and time.monotonic() >= next_status:
                await self._publish_status(client, "online")
                next_status = time.monotonic() + cfg.status_period_s
            if self._buffer:
                await self._publish_window(client)

    async def _publish_window(self, client: aiomqtt.Client) -> None:
        """Publish up to ``window`` buffered messages at once; on any failure (or cancellation) put back
        what was not delivered, in order, and raise."""
        n = min(self.params.window, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(n)]
        self._inflight = n
        timeout = self.params.ack_timeout_s
        tasks = [
            asyncio.ensure_future(client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain, timeout=timeout))
            for m in batch
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            error = self._settle(batch, tasks)
        if error is not None:
            raise error if isinstance(error, aiomqtt.MqttError) else aiomqtt.MqttError(f"publish failed: {error!r}")
        if not self._buffer:
            self._drained.set()

    def _settle(self, batch: list[Outgoing], tasks: Sequence[asyncio.Future[None]]) -> BaseException | None:
        """Count what was delivered, cancel and requeue the rest; return the first error (if any)."""
        failed: list[Outgoing] = []
        error: BaseException | None = None
        for m, t in zip(batch, tasks, strict=True):
            if t.done() and not t.cancelled() and t.exception() is None:
                self.delivered[m.kind] += 1
                continue
            failed.append(m)
            if t.done() and not t.cancelled():
                error = error or t.exception()
            else:
                t.cancel()
                error = error or aiomqtt.MqttError("publish interrupted")
        self._inflight = 0
        if failed:
            self._requeue(failed)
        return error
