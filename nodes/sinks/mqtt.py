"""MQTT sink: predictions and actuator commands to a broker, without ever blocking the pipeline.

Topics (``prefix`` from the config, default ``spikestream``):

- ``<prefix>/prediction``: one JSON object per prediction record (see ``nodes.sinks.predictions``), only the final
  decisions or every record (``publish``).
- ``<prefix>/status`` (retained): ``{"state": "online", ...counters}`` on every connect and every
  ``status_period_s``; ``{"state": "offline", ...}`` when the node stops, and as the last will when the
  connection dies.
- each actuator rule's own ``topic`` (as written, not prefixed) with the rule's ``payload``.

Delivery: ``process`` only appends to a bounded buffer (``buffer_size`` messages; when full the oldest is
dropped and counted). A background task owns the ``aiomqtt.Client``: it connects, publishes the buffer
with up to ``window`` messages in flight, and on any failure reconnects with exponential backoff
(``reconnect_min_s`` doubling up to ``reconnect_max_s``), counted and logged. A message leaves the buffer
only when the broker acknowledged it (QoS 1) or it was written to the socket (QoS 0); messages in flight
when the connection dies go back to the front of the buffer and are sent again after reconnecting. So at
QoS 1 delivery is *at least once*: a message whose acknowledgement was lost arrives twice (same ``seq``).

Actuator rules (``[[nodes.NAME.rules]]``) debounce the predicted label in stream time (record ``t``): a
rule fires when the predicted label has been the rule's ``label`` with ``scores[label] >= min_score`` on
every record for at least ``min_dwell_ms``; it fires once per such run (it re-arms when the label changes
or the score drops), and never twice within ``cooldown_ms``. Rules look at every record, running
predictions and decisions alike, whatever ``publish`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiomqtt
import numpy as np

from pipeline.errors import ConfigError
from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext

from .predictions import KindCounter, check_predictions, prediction_dicts, select, to_json

STATUS_RETAIN = True


@dataclass(frozen=True, kw_only=True)
class BrokerParams:
    """How to reach an MQTT broker (shared by the MQTT sink and the teach source)."""

    host: str = "localhost"  #: broker host name or address
    port: int = 1883  #: broker TCP port (8883 is the usual TLS port)
    prefix: str = "spikestream"  #: topic prefix, without a trailing slash
    qos: int = 1  #: MQTT QoS of what this node publishes and subscribes to: 0 or 1 (2 is accepted)
    username: str | None = None  #: user name, when the broker requires one
    password: str | None = None  #: password in clear (prefer ``password_file``)
    password_file: str | None = None  #: file whose first line is the password
    tls: bool = False  #: connect with TLS (implied by ``ca_file``/``cert_file``)
    ca_file: str | None = None  #: CA certificate(s) to verify the broker with (PEM); default: system CAs
    cert_file: str | None = None  #: client certificate (PEM), for brokers that require one
    key_file: str | None = None  #: the client certificate's private key (PEM)
    tls_insecure: bool = False  #: do not verify the broker's certificate/host name (testing only)
    client_id: str | None = None  #: MQTT client identifier; default: ``spikestream-<node>-<random>``
    keepalive_s: int = 30  #: MQTT keep-alive, seconds (>= 5)
    reconnect_min_s: float = 0.5  #: first reconnect delay, seconds (> 0)
    reconnect_max_s: float = 30.0  #: reconnect delays double up to this, seconds (>= reconnect_min_s)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {self.qos}")
        if not self.prefix or self.prefix.endswith("/") or any(c in self.prefix for c in "+#"):
            raise ValueError(f"prefix must be a topic without '+', '#' or a trailing '/', got {self.prefix!r}")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and self.username is None:
            raise ValueError("a password needs a username")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        if self.keepalive_s < 5:
            raise ValueError(f"keepalive_s must be >= 5, got {self.keepalive_s}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError(
                f"need 0 < reconnect_min_s <= reconnect_max_s, got {self.reconnect_min_s}, {self.reconnect_max_s}"
            )

    @property
    def broker(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None


def read_password(params: BrokerParams) -> str | None:
    """The password from the config or its file (first line, without the line end)."""
    if params.password_file is None:
        return params.password
    try:
        text = Path(params.password_file).expanduser().read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read password_file {params.password_file!r}: {exc}") from None
    return text.splitlines()[0] if text else ""


def tls_context(params: BrokerParams) -> ssl.SSLContext | None:
    """The TLS context the config asks for, or ``None`` for plain TCP. Raises ``ConfigError`` naming a
    certificate file that cannot be loaded."""
    if not params.uses_tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=params.ca_file)
        if params.cert_file is not None:
            ctx.load_cert_chain(params.cert_file, params.key_file)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(f for f in (params.ca_file, params.cert_file, params.key_file) if f)
        raise ConfigError(f"cannot load TLS files ({files}): {exc}") from None
    if params.tls_insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_client(
    params: BrokerParams, identifier: str, *, will: aiomqtt.Will | None = None, max_inflight: int | None = None
) -> aiomqtt.Client:
    """A (not yet connected) client for the broker of ``params``."""
    client = aiomqtt.Client(
        params.host,
        params.port,
        username=params.username,
        password=read_password(params),
        identifier=identifier,
        will=will,
        keepalive=params.keepalive_s,
        tls_context=tls_context(params),
        tls_insecure=params.tls_insecure if params.uses_tls else None,
        max_inflight_messages=max_inflight,
        timeout=10.0,
    )
    # aiomqtt warns about every publish beyond 10 unacknowledged ones; a window of them is the plan here
    client.pending_calls_threshold = max(10, (max_inflight or 0) + 10)
    return client


def describe_connect_error(params: BrokerParams, exc: BaseException) -> str:
    """A one-line, human explanation of a failed connection that names the broker."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "not authori" in lowered or "user name or password" in lowered or "code:5]" in lowered or "code:4]" in lowered:
        who = f"user {params.username!r}" if params.username else "anonymous clients"
        return f"MQTT broker {params.broker} refused {who}: {text} (check username/password)"
    if isinstance(exc, ssl.SSLError) or "ssl" in lowered or "certificate" in lowered:
        return f"TLS to MQTT broker {params.broker} failed: {text} (check ca_file/cert_file/tls_insecure)"
    return f"MQTT broker {params.broker} unreachable: {text}"


# -- actuator rules ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ActuatorRule:
    """Publish ``payload`` to ``topic`` when class ``label`` has been predicted steadily (see the module)."""

    label: int  #: the class that triggers the rule (>= 0)
    topic: str  #: topic to publish to, as written (not prefixed)
    payload: str = "ON"  #: what to publish
    min_score: float = 0.0  #: the record's ``scores[label]`` must be at least this (classifier units)
    min_dwell_ms: float = 0.0  #: the label must have held this long in stream time, ms (>= 0)
    cooldown_ms: float = 0.0  #: no second firing within this much stream time after one, ms (>= 0)
    retain: bool = False  #: publish retained

    def __post_init__(self) -> None:
        if self.label < 0:
            raise ValueError(f"rule label must be >= 0, got {self.label}")
        if not self.topic or any(c in self.topic for c in "+#"):
            raise ValueError(f"rule topic must be a non-empty topic without wildcards, got {self.topic!r}")
        if self.min_dwell_ms < 0 or self.cooldown_ms < 0:
            raise ValueError(f"min_dwell_ms and cooldown_ms must be >= 0, got {self.min_dwell_ms}, {self.cooldown_ms}")


@dataclass
class RuleState:
    """Where a rule stands: start of the current qualifying run (stream µs, or ``None`` outside a run),
    whether it fired during this run, and when it last fired."""

    run_start_t: int | None = None
    fired_in_run: bool = False
    last_fire_t: int | None = None


def debounce(rule: ActuatorRule, state: RuleState, records: np.ndarray) -> list[int]:
    """Advance ``state`` over ``records`` (prediction records in stream order); return the indices of the
    records at which the rule fires. Mutates only ``state``."""
    fires: list[int] = []
    if records.shape[0] == 0:
        return fires
    scores = records["scores"]
    if rule.label >= scores.shape[1]:
        return fires  # a class the classifier does not have never fires
    dwell_us = rule.min_dwell_ms * 1000.0
    cooldown_us = rule.cooldown_ms * 1000.0
    qualifies = ((records["label"] == rule.label) & (scores[:, rule.label] >= rule.min_score)).tolist()
    # one pass of plain Python over the (few) prediction records: the state machine is sequential
    for i, (ok, t) in enumerate(zip(qualifies, records["t"].tolist(), strict=True)):
        if not ok:
            state.run_start_t = None
            state.fired_in_run = False
            continue
        if state.run_start_t is None:
            state.run_start_t = t
        if state.fired_in_run or t - state.run_start_t < dwell_us:
            continue
        if state.last_fire_t is not None and t - state.last_fire_t < cooldown_us:
            continue
        state.fired_in_run = True
        state.last_fire_t = t
        fires.append(i)
    return fires


# -- the sink ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MqttParams(BrokerParams):
    """Parameters of the MQTT sink (and of its broker connection, see ``BrokerParams``)."""

    publish: Literal["decisions", "all", "none"] = "decisions"  #: which records go to <prefix>/prediction
    rules: tuple[ActuatorRule, ...] = ()  #: actuator rules, ``[[nodes.NAME.rules]]`` tables
    buffer_size: int = 10_000  #: messages held while the broker is slow or away (>= 1); oldest dropped
    window: int = 64  #: messages in flight (published, not yet acknowledged) at once (>= 1)
    ack_timeout_s: float = 5.0  #: a publish not acknowledged within this is treated as lost (> 0)
    status_period_s: float = 30.0  #: republish the retained status this often, seconds (0 = only on connect)
    flush_timeout_s: float = 10.0  #: at the end of the stream, wait at most this long for the buffer to drain
    stop_timeout_s: float = 2.0  #: when stopping, wait at most this long to say "offline" and disconnect

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {self.buffer_size}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        for name in ("ack_timeout_s", "flush_timeout_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.status_period_s < 0:
            raise ValueError(f"status_period_s must be >= 0, got {self.status_period_s}")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One buffered MQTT message (``kind`` says which counter its delivery goes to)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: Literal["prediction", "actuation"]


@dataclass
class MqttCounters:
    """What the sink reports."""

    received: int = 0  #: prediction records received
    enqueued: int = 0  #: MQTT messages put in the buffer
    published: int = 0  #: prediction messages delivered (acknowledged at QoS >= 1)
    actuations: int = 0  #: rule firings
    actuations_published: int = 0  #: rule firings delivered
    dropped: int = 0  #: messages dropped because the buffer was full
    resent: int = 0  #: messages sent again after a failed or unacknowledged publish
    connects: int = 0  #: successful connections
    reconnects: int = 0  #: successful connections after the first
    connect_failures: int = 0  #: failed connection attempts
    disconnects: int = 0  #: connections lost
    status_published: int = 0  #: status messages delivered
    rule_fires: dict[str, int] = field(default_factory=dict)  #: firings per rule topic


class MqttSink(Node):
    """Publishes predictions and actuator commands to an MQTT broker (see the module docstring)."""

    Config = MqttParams

    def __init__(self, name: str, config: MqttParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.c = MqttCounters()
        self.ignored = KindCounter()
        self.last_error: str | None = None
        self.classes: int | None = None
        self._seq = 0
        self._buffer: deque[Outgoing] = deque()
        self._inflight = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._closing = False
        self._connected = False
        self._was_up = False  # the current connection attempt got through (a later error is a lost link)
        self._task: asyncio.Task[None] | None = None
        self._states = [RuleState() for _ in config.rules]
        self._identifier = config.client_id or f"spikestream-{name}-{uuid.uuid4().hex[:8]}"
        self.prediction_topic = f"{config.prefix}/prediction"
        self.status_topic = f"{config.prefix}/status"
        # fail on unreadable credentials/certificates now, as a config error, not in the background task
        read_password(config)
        tls_context(config)

    # -- what the pipeline calls ------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._connection_loop())

    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind != PREDICTIONS or msg.data is None:
            self.ignored.add(msg.kind)
            return ()
        self.handle(msg.data)
        return ()

    def handle(self, records: np.ndarray) -> None:
        """Buffer the MQTT messages for a batch of prediction records. Never blocks, never raises on the
        broker's account."""
        check_predictions(records)
        n = records.shape[0]
        if n == 0:
            return
        self.classes = int(records.dtype["scores"].shape[0])
        self.c.received += n
        for rule, state in zip(self.config.rules, self._states, strict=True):
            for _ in debounce(rule, state, records):
                self.c.actuations += 1
                self.c.rule_fires[rule.topic] = self.c.rule_fires.get(rule.topic, 0) + 1
                self._enqueue(Outgoing(rule.topic, rule.payload.encode(), self.config.qos, rule.retain, "actuation"))
        if self.config.publish != "none":
            chosen = select(records, self.config.publish)
            for d in prediction_dicts(chosen, self._seq):
                payload = to_json(d).encode()
                self._enqueue(Outgoing(self.prediction_topic, payload, self.config.qos, False, "prediction"))
            self._seq += chosen.shape[0]

    def control(self, msg: Message) -> Sequence[Message]:
        self.ignored.add(f"control:{msg.command}")
        return ()

    async def flush(self) -> Sequence[Message]:
        """Wait (at most ``flush_timeout_s``) until everything buffered is delivered."""
        try:
            await asyncio.wait_for(self._drained.wait(), self.config.flush_timeout_s)
        except TimeoutError:
            self.log.warning(
                "%s: %d MQTT messages still undelivered to %s after %.1f s%s",
                self.name,
                self.pending,
                self.config.broker,
                self.config.flush_timeout_s,
                f" (last error: {self.last_error})" if self.last_error else "",
            )
        return ()

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        if not self._connected:  # nothing can be delivered or said: do not wait for a reconnect
            self._task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.config.stop_timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        self._connected = False

    def results(self) -> dict[str, Any]:
        c = self.c
        return {
            "mqtt_broker": self.config.broker,
            "mqtt_published": c.published,
            "mqtt_actuations": c.actuations,
            "mqtt_actuations_published": c.actuations_published,
            "mqtt_dropped": c.dropped,
            "mqtt_undelivered": self.pending,
            "mqtt_resent": c.resent,
            "mqtt_reconnects": c.reconnects,
            "mqtt_connect_failures": c.connect_failures,
            "mqtt_received": c.received,
            "mqtt_rule_fires": dict(c.rule_fires),
            "mqtt_ignored": self.ignored.as_dict(),
            "mqtt_last_error": self.last_error,
            "warnings": self._warnings(),
        }

    def _warnings(self) -> list[str]:
        lost = []
        if self.c.dropped:
            lost.append(f"{self.c.dropped:,} dropped when the buffer was full")
        if self.pending:
            lost.append(f"{self.pending:,} still buffered at the end")
        if not lost:
            return []
        why = f" (last error: {self.last_error})" if self.last_error else ""
        return [f"MQTT messages not delivered to {self.config.broker}: {', '.join(lost)}{why}"]

    # -- state, for tests and the status message ----------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending(self) -> int:
        """Messages not yet delivered (buffered or in flight)."""
        return len(self._buffer) + self._inflight

    def status(self, state: str) -> dict[str, Any]:
        c = self.c
        return {
            "state": state,
            "graph": self.context.graph,
            "node": self.name,
            "classes": self.classes,
            "publish": self.config.publish,
            "rules": len(self.config.rules),
            "received": c.received,
            "published": c.published,
            "actuations": c.actuations,
            "dropped": c.dropped,
            "reconnects": c.reconnects,
            "pending": self.pending,
            "time": round(time.time(), 3),
        }

    # -- the buffer -----------------------------------------------------------------------------------------
    def _enqueue(self, item: Outgoing) -> None:
        if len(self._buffer) >= self.config.buffer_size:
            self._buffer.popleft()
            self.c.dropped += 1
            if self.c.dropped == 1 or self.c.dropped % 1000 == 0:
                self.log.warning(
                    "%s: MQTT buffer full (%d messages, broker %s %s): dropping the oldest (%d dropped so far)",
                    self.name,
                    self.config.buffer_size,
                    self.config.broker,
                    "connected" if self._connected else "not connected",
                    self.c.dropped,
                )
        self._buffer.append(item)
        self.c.enqueued += 1
        self._drained.clear()
        self._wake.set()

    def _requeue(self, items: list[Outgoing]) -> None:
        """Put undelivered items back at the front, in their order; the buffer bound still holds."""
        for item in reversed(items):
            self._buffer.appendleft(item)
        self.c.resent += len(items)
        while len(self._buffer) > self.config.buffer_size:
            self._buffer.popleft()
            self.c.dropped += 1

    # -- the connection task --------------------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        cfg = self.config
        delay = cfg.reconnect_min_s
        will = aiomqtt.Will(self.status_topic, to_json({"state": "offline", "node": self.name}), qos=1, retain=True)
        while True:
            client = make_client(cfg, self._identifier, will=will, max_inflight=cfg.window)
            try:
                async with client:
                    self._on_connected()
                    delay = cfg.reconnect_min_s
                    try:
                        await self._serve(client)
                    finally:
                        self._connected = False
                return  # closing: everything delivered and "offline" said
            except aiomqtt.MqttError as exc:
                if self.c.connects and not self._closing and self._was_up:
                    self.c.disconnects += 1
                    self.log.warning("%s: connection to MQTT broker %s lost: %s", self.name, cfg.broker, exc)
                else:
                    self.c.connect_failures += 1
                    why = describe_connect_error(cfg, exc)
                    loud = self.last_error != why or self.c.connect_failures % 10 == 1
                    self.last_error = why
                    if loud:
                        self.log.error("%s: %s; retrying in %.1f s", self.name, why, delay)
                self._was_up = False
            except Exception as exc:  # a bug or an odd socket error: keep the pipeline up, say so, retry
                self.c.connect_failures += 1
                self.last_error = f"MQTT broker {cfg.broker}: {exc!r}"
                self.log.exception("%s: MQTT connection to %s failed", self.name, cfg.broker)
                self._connected = self._was_up = False
            if self._closing:
                return
            self.log.info("%s: reconnecting to MQTT broker %s in %.1f s", self.name, cfg.broker, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, cfg.reconnect_max_s)

    def _on_connected(self) -> None:
        self._connected = True
        self._was_up = True
        if self.c.connects:
            self.c.reconnects += 1
            self.log.info(
                "%s: reconnected to MQTT broker %s (%d reconnects); %d messages to deliver",
                self.name,
                self.config.broker,
                self.c.reconnects,
                self.pending,
            )
        else:
            self.log.info("%s: connected to MQTT broker %s", self.name, self.config.broker)
        self.c.connects += 1
        self.last_error = None

    async def _publish_status(self, client: aiomqtt.Client, state: str) -> None:
        await client.publish(
            self.status_topic,
            to_json(self.status(state)),
            qos=1,
            retain=STATUS_RETAIN,
            timeout=self.config.ack_timeout_s,
        )
        self.c.status_published += 1

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Deliver while watching the connection: an idle sink notices a lost broker at once (and then
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
        """Return never; raise ``MqttError`` when the connection drops (the sink subscribes to nothing,
        so the message iterator only ever ends that way)."""
        async for _ in client.messages:
            pass

    async def _deliver(self, client: aiomqtt.Client) -> None:
        """Publish the buffer until closing (then say offline) or until the connection fails (raises)."""
        cfg = self.config
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
        n = min(self.config.window, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(n)]
        self._inflight = n
        timeout = self.config.ack_timeout_s
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
                if m.kind == "prediction":
                    self.c.published += 1
                else:
                    self.c.actuations_published += 1
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
