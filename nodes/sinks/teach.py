"""Live teaching over MQTT: a source that turns commands on ``<prefix>/control`` into control and labels
messages for the graph.

Commands are JSON objects::

    {"cmd": "freeze"}                      -> control "freeze"   (optional "scope": "features"|"classifier"|...)
    {"cmd": "unfreeze"}                    -> control "unfreeze" (same optional "scope")
    {"cmd": "snapshot"}                    -> control "checkpoint" (every node with state saves it)
    {"cmd": "label", "label": 3}           -> a labels record: from now on the scene shows class 3
    {"cmd": "label", "label": null}        -> ... shows nothing known (-1; "unknown" means the same)
    {"cmd": "label", "label": 3, "train": false}   -> evaluate only: the classifier must not learn from it

Every command is answered on ``<prefix>/control/reply``: ``{"ok": true, "cmd": ..., ...}`` when it was
accepted, ``{"ok": false, "error": "why"}`` when it was refused (not JSON, not an object, unknown command or
key, label outside -1..classes-1, wrong types); a refused command changes nothing. A request may carry an
``"id"`` (string or number); the reply repeats it.

Timestamps: a label record's ``t`` is the current **wall-clock time in microseconds since the Unix epoch**
(``time.time_ns() // 1000``) when the command arrives. The classifier aligns labels with event timestamps,
so a graph taught live must stamp its events with wall-clock microseconds too (live cameras driven by
``devices`` do, and so does ``simulated-camera`` replaying a recording); the ``replay`` source keeps a
file's own time base, which would not line up with these labels. An
accepted command goes into the graph before its reply is published: waiting for the reply's round trip to
the broker first made labels reach the classifier after camera spikes stamped later than them (1-2 late
labels per two commands in the live test, none since).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import numpy as np

from pipeline.events import LABEL_DTYPE, UNKNOWN_LABEL
from pipeline.message import CHECKPOINT, FREEZE, UNFREEZE, Message, control_message, labels_message
from pipeline.node import NodeContext, Source

from .mqtt import BrokerParams, describe_connect_error, make_client, read_password, tls_context

COMMANDS = ("freeze", "unfreeze", "snapshot", "label")
_CONTROL = {"freeze": FREEZE, "unfreeze": UNFREEZE, "snapshot": CHECKPOINT}
_KEYS = {
    "freeze": {"cmd", "id", "scope"},
    "unfreeze": {"cmd", "id", "scope"},
    "snapshot": {"cmd", "id"},
    "label": {"cmd", "id", "label", "train"},
}


class CommandError(ValueError):
    """A control command that is refused; the message says why."""


def now_us() -> int:
    """Wall-clock time in microseconds since the Unix epoch (the time base of live labels)."""
    return time.time_ns() // 1000


def parse_command(payload: bytes | str, classes: int, t_us: int | None = None) -> tuple[Message, dict[str, Any]]:
    """Validate one command; return the message for the graph and the reply's body.

    Raises ``CommandError`` naming what is wrong. ``t_us`` is the label time (default: ``now_us()``)."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CommandError(f"a command must be a JSON object, got {type(doc).__name__}")
    cmd = doc.get("cmd")
    if cmd not in COMMANDS:
        raise CommandError(f"unknown cmd {cmd!r}; known: {', '.join(COMMANDS)}")
    extra = sorted(set(doc) - _KEYS[cmd])
    if extra:
        raise CommandError(f"unknown key(s) for {cmd!r}: {', '.join(extra)}; allowed: {', '.join(sorted(_KEYS[cmd]))}")
    reply: dict[str, Any] = {"cmd": cmd}
    if "id" in doc:
        if not isinstance(doc["id"], str | int) or isinstance(doc["id"], bool):
            raise CommandError(f"id must be a string or an integer, got {doc['id']!r}")
        reply["id"] = doc["id"]
    if cmd in _CONTROL:
        body: dict[str, Any] = {}
        if "scope" in doc:
            if not isinstance(doc["scope"], str) or not doc["scope"]:
                raise CommandError(f"scope must be a non-empty string, got {doc['scope']!r}")
            body["scope"] = reply["scope"] = doc["scope"]
        return control_message(_CONTROL[cmd], **body), reply
    if "label" not in doc:
        raise CommandError('"label" needs a "label": a class number, null or "unknown"')
    label = doc["label"]
    if label is None or label == "unknown":
        label = UNKNOWN_LABEL
    if not isinstance(label, int) or isinstance(label, bool):
        raise CommandError(f"label must be an integer, null or 'unknown', got {label!r}")
    if not UNKNOWN_LABEL <= label < classes:
        raise CommandError(f"label {label} out of range -1..{classes - 1}")
    train = doc.get("train", True)
    if not isinstance(train, bool):
        raise CommandError(f"train must be true or false, got {train!r}")
    rec = np.zeros(1, dtype=LABEL_DTYPE)
    rec["t"] = now_us() if t_us is None else t_us
    rec["label"] = label
    rec["train"] = train
    reply |= {"label": label, "train": train, "t": int(rec["t"][0])}
    return labels_message(rec), reply


@dataclass(frozen=True, kw_only=True)
class TeachParams(BrokerParams):
    """Parameters of the teach source (and of its broker connection, see ``BrokerParams``)."""

    classes: int = 10  #: number of classes; labels must be in -1..classes-1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classes < 1:
            raise ValueError(f"classes must be >= 1, got {self.classes}")


class TeachSource(Source):
    """Subscribes to ``<prefix>/control`` and emits the accepted commands (see the module docstring).

    It runs until the graph is stopped (the runtime cancels ``produce``); connection losses are retried
    with exponential backoff, logged and counted."""

    Config = TeachParams

    def __init__(self, name: str, config: TeachParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.control_topic = f"{config.prefix}/control"
        self.reply_topic = f"{config.prefix}/control/reply"
        self.accepted = 0
        self.refused = 0
        self.connects = 0
        self.connect_failures = 0
        self.last_error: str | None = None
        self.subscribed = asyncio.Event()
        self._identifier = config.client_id or f"spikestream-{name}-{uuid.uuid4().hex[:8]}"
        read_password(config)
        tls_context(config)

    def handle(self, payload: bytes | str) -> tuple[Message | None, dict[str, Any]]:
        """The message a command asks for (``None`` if refused) and the reply to send."""
        try:
            msg, reply = parse_command(payload, self.config.classes)
        except CommandError as exc:
            self.refused += 1
            self.log.warning("%s: refused control command %.200r: %s", self.name, payload, exc)
            return None, {"ok": False, "error": str(exc)}
        self.accepted += 1
        self.log.info("%s: control command %s", self.name, reply)
        return msg, {"ok": True, **reply}

    async def produce(self) -> AsyncIterator[Message]:
        cfg = self.config
        delay = cfg.reconnect_min_s
        while True:
            try:
                async with make_client(cfg, self._identifier) as client:
                    self.connects += 1
                    self.last_error = None
                    delay = cfg.reconnect_min_s
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
                self.connect_failures += 1
                self.last_error = describe_connect_error(cfg, exc)
                self.log.error("%s: %s; retrying in %.1f s", self.name, self.last_error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, cfg.reconnect_max_s)

    def results(self) -> dict[str, Any]:
        return {
            "teach_accepted": self.accepted,
            "teach_refused": self.refused,
            "teach_connects": self.connects,
            "teach_connect_failures": self.connect_failures,
            "teach_last_error": self.last_error,
        }
