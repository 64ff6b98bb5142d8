"""ZeroMQ PUB sink: predictions for any number of subscribers (dashboards, robots, other programs).

Two formats (``format``):

- ``"json"`` (default): one two-frame message per prediction record, ``[b"prediction", JSON]``, the JSON
  object of ``nodes.sinks.predictions`` (with ``seq``). Any language with a ZeroMQ binding can read it.
- ``"wire"``: each predictions batch as the pipeline's own wire message (``pipeline.wire.encode``,
  three frames, topic ``b"predictions"``); ``pipeline.wire.decode`` gives the records back as an array.

PUB is fire-and-forget by design: sending never blocks the pipeline, and a subscriber that falls more
than ``hwm`` messages behind loses messages inside ZeroMQ (a gap in ``seq`` / the wire sequence shows it).
A subscriber only sees what is published after it connected (ZeroMQ's "slow joiner").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import zmq
from typing_extensions import override

from pipeline.errors import ConfigError
from pipeline.message import PREDICTIONS, Message
from pipeline.node import Node, NodeContext
from pipeline.wire import encode

from .predictions import KindCounter, check_predictions, prediction_dicts, select, to_json

JSON_TOPIC = b"prediction"


@dataclass(frozen=True, kw_only=True)
class ZmqPubParams:
    """Parameters of the ZeroMQ PUB sink."""

    bind: str = "tcp://127.0.0.1:5560"  #: address to bind, e.g. tcp://*:5560 or ipc:///run/spikestream/pred
    format: Literal["json", "wire"] = "json"  #: see the module docstring
    records: Literal["decisions", "all"] = "all"  #: which records to publish (json format only)
    hwm: int = 10_000  #: send high-water mark, messages per subscriber (>= 1)

    def __post_init__(self) -> None:
        if "://" not in self.bind:
            msg = f"bind must be a ZeroMQ address like tcp://127.0.0.1:5560, got {self.bind!r}"
            raise ValueError(msg)
        if self.hwm < 1:
            msg = f"hwm must be >= 1, got {self.hwm}"
            raise ValueError(msg)


class ZmqPubSink(Node):
    """Publishes prediction records on a ZeroMQ PUB socket."""

    Config = ZmqPubParams
    config: ZmqPubParams

    def __init__(self, name: str, config: ZmqPubParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.sent = 0  #: messages sent
        self.records = 0  #: prediction records published
        self.dropped = 0  #: messages ZeroMQ refused to queue
        self.ignored = KindCounter()
        self._seq = 0
        self._sock: zmq.Socket[bytes] | None = None

    @override
    async def start(self) -> None:
        # a plain (non-asyncio) socket: every send is non-blocking, so the loop never waits on it
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self.config.hwm)
        try:
            sock.bind(self.config.bind)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            msg = f"nodes.{self.name}: cannot bind {self.config.bind}: {exc}"
            raise ConfigError(msg) from None
        self._sock = sock
        self.log.info("%s: publishing predictions (%s) on %s", self.name, self.config.format, self.endpoint)

    @property
    def endpoint(self) -> str:
        """The bound address (with the real port when the config asked for ``tcp://host:*``)."""
        if self._sock is None:
            return self.config.bind
        return str(self._sock.getsockopt_string(zmq.LAST_ENDPOINT))

    def _send(self, frames: Sequence[bytes | memoryview]) -> None:
        assert self._sock is not None
        try:
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind != PREDICTIONS or msg.data is None:
            self.ignored.add(msg.kind)
            return ()
        check_predictions(msg.data)
        if self.config.format == "wire":
            self._send(encode(msg))
            self.records += msg.count
            return ()
        chosen = select(msg.data, self.config.records)
        for d in prediction_dicts(chosen, self._seq):
            self._send([JSON_TOPIC, to_json(d).encode()])
        self._seq += chosen.shape[0]
        self.records += chosen.shape[0]
        return ()

    @override
    async def stop(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    @override
    def results(self) -> dict[str, Any]:
        return {
            "zmqpub_records": self.records,
            "zmqpub_sent": self.sent,
            "zmqpub_dropped": self.dropped,
            "zmqpub_ignored": self.ignored.as_dict(),
        }
