"""``type = "teach"``: live teaching over MQTT, a source that turns commands on ``<prefix>/control`` into
control and labels messages for the graph.

The commands, their validation and their replies are those of ``nodes.mqtt.commands``; every command is
answered on ``<prefix>/control/reply``.

Timestamps: a label record's ``t`` is the wall-clock time (µs since the Unix epoch) when the command
arrives. Live cameras driven by ``devices`` stamp their events that way, and so does ``simulated-camera``
replaying a recording; the ``replay`` source keeps a file's own time base, which would not line up with
these labels. An accepted command goes into the graph before its reply is published: waiting for the
reply's round trip to the broker first made labels reach the classifier after camera spikes stamped later
than them (1-2 late labels per two commands in the live test, none since).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
from typing_extensions import override

from pipeline.message import Message
from pipeline.node import NodeContext, Source

from .broker import BrokerParams
from .commands import answer_command
from .link import BrokerLink


@dataclass(frozen=True, kw_only=True)
class TeachParams(BrokerParams):
    """Parameters of the teach source (and of its broker connection, see ``BrokerParams``)."""

    classes: int = 10  #: number of classes; labels must be in -1..classes-1

    @override
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classes < 1:
            msg = f"classes must be >= 1, got {self.classes}"
            raise ValueError(msg)


class TeachSource(Source):
    """Subscribes to ``<prefix>/control`` and emits the accepted commands (see the module docstring).

    It runs until the graph is stopped (the runtime cancels ``produce``); connection losses are retried
    with exponential backoff, logged and counted."""

    Config = TeachParams
    config: TeachParams

    def __init__(self, name: str, config: TeachParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.control_topic = f"{config.prefix}/control"
        self.reply_topic = f"{config.prefix}/control/reply"
        self.accepted = 0
        self.refused = 0
        self.subscribed = asyncio.Event()
        self.link = BrokerLink(name, config, self.log)

    def handle(self, payload: bytes | str) -> tuple[Message | None, dict[str, Any]]:
        """The message a command asks for (``None`` if refused) and the reply to send."""
        msg, reply = answer_command(payload, self.config.classes)
        if msg is None:
            self.refused += 1
            self.log.warning("%s: refused control command %.200r: %s", self.name, payload, reply["error"])
        else:
            self.accepted += 1
            self.log.info("%s: control command %s", self.name, reply)
        return msg, reply

    @override
    async def produce(self) -> AsyncIterator[Message]:
        cfg = self.config
        link = self.link
        while True:
            try:
                async with link.client() as client:
                    link.up()
                    await client.subscribe(self.control_topic, qos=cfg.qos)
                    self.subscribed.set()
                    self.log.info("%s: listening for commands on %s at %s", self.name, self.control_topic, cfg.broker)
                    async for m in client.messages:
                        out, reply = self.handle(bytes(m.payload) if m.payload is not None else b"")
                        if out is not None:
                            # into the graph first: a label is stamped on arrival, and every
                            # millisecond it waits here (the reply's round trip to the broker) is a
                            # millisecond of camera spikes the classifier sees under the old label
                            yield out
                        await client.publish(self.reply_topic, json.dumps(reply), qos=cfg.qos)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                link.down(exc)
            await link.wait_before_retry()

    @override
    def results(self) -> dict[str, Any]:
        return {
            "teach_accepted": self.accepted,
            "teach_refused": self.refused,
            "teach_connects": self.link.connects,
            "teach_connect_failures": self.link.connect_failures,
            "teach_disconnects": self.link.disconnects,
            "teach_last_error": self.link.last_error,
        }
