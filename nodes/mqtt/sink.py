"""``type = "mqtt"``: predictions and actuator commands to a broker, without ever blocking the pipeline.

Topics (``prefix`` from the config, default ``spikestream``):

- ``<prefix>/prediction``: one JSON object per prediction record (see ``nodes.sinks.predictions``), only the
  final decisions or every record (``publish``).
- ``<prefix>/status`` (retained): ``{"state": "online", ...counters}`` on every connect and every
  ``status_period_s``; ``{"state": "offline", ...}`` when the node stops, and as the last will when the
  connection dies.
- each actuator rule's own ``topic`` (as written, not prefixed) with the rule's ``payload``; the rules
  (``nodes.mqtt.rules``) look at every record, running predictions and decisions alike, whatever
  ``publish`` says.

``process`` only hands messages to a ``BufferedPublisher`` (``nodes.mqtt.publisher``: bounded buffer,
reconnects with backoff, at-least-once delivery at QoS 1, so a message may arrive twice with the same
``seq``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from typing_extensions import override

from nodes.sinks.predictions import KindCounter, check_predictions, prediction_dicts, select, to_json
from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext

from .publisher import BufferedPublisher, Outgoing, PublisherParams
from .rules import ActuatorRule, RuleState, debounce

PREDICTION = "prediction"
ACTUATION = "actuation"


@dataclass(frozen=True, kw_only=True)
class MqttParams(PublisherParams):
    """Parameters of the MQTT sink (and of its publisher and broker connection, see ``PublisherParams``)."""

    publish: Literal["decisions", "all", "none"] = "decisions"  #: which records go to <prefix>/prediction
    rules: tuple[ActuatorRule, ...] = ()  #: actuator rules, ``[[nodes.NAME.rules]]`` tables


@dataclass
class MqttCounters:
    """What the sink itself counts (delivery is counted by its publisher)."""

    received: int = 0  #: prediction records received
    actuations: int = 0  #: rule firings
    rule_fires: dict[str, int] = field(default_factory=dict)  #: firings per rule topic


class MqttSink(Node):
    """Publishes predictions and actuator commands to an MQTT broker (see the module docstring)."""

    Config = MqttParams
    config: MqttParams

    def __init__(self, name: str, config: MqttParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.c = MqttCounters()
        self.ignored = KindCounter()
        self.classes: int | None = None
        self._seq = 0
        self._states = [RuleState() for _ in config.rules]
        self.prediction_topic = f"{config.prefix}/prediction"
        self.publisher = BufferedPublisher(name, config, self.log, self.status)

    # -- what the pipeline calls ------------------------------------------------------------------------
    @override
    async def start(self) -> None:
        self.publisher.start()

    @override
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
        qos = self.config.qos
        for rule, state in zip(self.config.rules, self._states, strict=True):
            for _ in debounce(rule, state, records):
                self.c.actuations += 1
                self.c.rule_fires[rule.topic] = self.c.rule_fires.get(rule.topic, 0) + 1
                self.publisher.enqueue(Outgoing(rule.topic, rule.payload.encode(), qos, rule.retain, ACTUATION))
        if self.config.publish != "none":
            chosen = select(records, self.config.publish)
            for d in prediction_dicts(chosen, self._seq):
                self.publisher.enqueue(Outgoing(self.prediction_topic, to_json(d).encode(), qos, False, PREDICTION))
            self._seq += chosen.shape[0]

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        self.ignored.add(f"control:{msg.command}")
        return ()

    @override
    async def flush(self) -> Sequence[Message]:
        await self.publisher.flush()
        return ()

    @override
    async def stop(self) -> None:
        await self.publisher.stop()

    @override
    def results(self) -> dict[str, Any]:
        p = self.publisher
        return {
            "mqtt_broker": self.config.broker,
            "mqtt_published": p.delivered[PREDICTION],
            "mqtt_actuations": self.c.actuations,
            "mqtt_actuations_published": p.delivered[ACTUATION],
            "mqtt_dropped": p.c.dropped,
            "mqtt_undelivered": p.pending,
            "mqtt_resent": p.c.resent,
            "mqtt_reconnects": p.link.reconnects,
            "mqtt_connect_failures": p.link.connect_failures,
            "mqtt_received": self.c.received,
            "mqtt_rule_fires": dict(self.c.rule_fires),
            "mqtt_ignored": self.ignored.as_dict(),
            "mqtt_last_error": p.last_error,
            "warnings": p.warnings(),
        }

    # -- state, for tests and the status message ----------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether the publisher is connected to the broker now."""
        return self.publisher.connected

    @property
    def pending(self) -> int:
        """Messages not yet delivered (buffered or in flight)."""
        return self.publisher.pending

    def status(self, state: str) -> dict[str, Any]:
        """The body of the retained status message: ``state`` and the sink's counters."""
        p = self.publisher
        return {
            "state": state,
            "graph": self.context.graph,
            "node": self.name,
            "classes": self.classes,
            "publish": self.config.publish,
            "rules": len(self.config.rules),
            "received": self.c.received,
            "published": p.delivered[PREDICTION],
            "actuations": self.c.actuations,
            "dropped": p.c.dropped,
            "reconnects": p.link.reconnects,
            "pending": p.pending,
            "time": round(time.time(), 3),
        }
