"""``type = "dashboard"``: a live page of the running graph, served by the graph itself, that also
teaches it.

Fed by taps only (lossy, counted: it can never slow or stall the graph), it keeps what the page shows
(``state``) and serves it (``server``). With a link to the graph (``dashboard -> stdp``, say, as
``spikestream run --dashboard`` adds), the page's buttons send commands: the one command implementation of
``nodes.mqtt.commands`` validates them, and accepted ones go in as labels or control messages, like the MQTT
``teach`` source's. A label taught from the page applies from the newest time the dashboard has seen in the
stream (the stream's own clock, so it works on replays and live cameras alike).

Bound to loopback it takes commands from any page; bound to any other address it needs a token (the
config's, else one made at start and logged), and pages without it are read-only.
"""

from __future__ import annotations

import ipaddress
import queue
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import override

from nodes.mqtt.commands import answer_command
from pipeline.message import Message
from pipeline.node import Node, NodeContext

from .server import DashboardServer
from .state import DashboardState


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class DashboardParams:
    """Parameters of the dashboard."""

    host: str = "127.0.0.1"  #: address to serve on; anything but loopback needs a token to teach
    port: int = 8050  #: tcp port (0: any free port, logged)
    token: str = ""  #: needed to teach from the page (empty: none on loopback, a new one elsewhere)
    classes: int = 10  #: classes the page can teach (labels -1..classes-1)
    class_names: tuple[str, ...] = ()  #: names shown on the buttons and bars
    fps: float = 10.0  #: frames sent to each page per second
    window_ms: float = 50.0  #: stream time an event frame accumulates, ms
    keep_serving: bool = False  #: keep serving the last state after the graph ended, until the process exits

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            msg = f"port must be in 0..65535, got {self.port}"
            raise ValueError(msg)
        if self.classes < 1:
            msg = f"classes must be >= 1, got {self.classes}"
            raise ValueError(msg)
        if not 0 < self.fps <= 60:
            msg = f"fps must be in (0, 60], got {self.fps}"
            raise ValueError(msg)
        if self.window_ms <= 0:
            msg = f"window_ms must be > 0, got {self.window_ms}"
            raise ValueError(msg)


class DashboardNode(Node):
    """The live dashboard (see the module docstring)."""

    Config = DashboardParams
    config: DashboardParams
    takes_metrics = True

    @classmethod
    @override
    def stream_facts(cls, config: DashboardParams, received: Mapping[str, Any]) -> Mapping[str, Any]:
        return {}  # what it sends (labels, control) carries no facts of its own

    def __init__(self, name: str, config: DashboardParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.state = DashboardState(config.classes, config.window_ms, config.class_names)
        self.state.expect(context.upstream)
        token = config.token or ("" if is_loopback(config.host) else secrets.token_urlsafe(16))
        self._commands: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.accepted = 0
        self.refused = 0
        self._last_label_t = 0
        self.server = DashboardServer(
            self.state,
            host=config.host,
            port=config.port,
            token=token,
            fps=config.fps,
            submit=self.submit,
            log=self.log,
        )

    def submit(self, text: str) -> dict[str, Any]:
        """Validate one command from a page (any thread); queue what it asks for; return the reply."""
        t_us = max(self.state.label_time(), self._last_label_t)  # never before a label it taught already
        if not self.context.downstream:
            msg, reply = None, {"ok": False, "error": "read-only: this dashboard has no link into the graph"}
        elif self.state.ended:
            msg, reply = None, {"ok": False, "error": "the graph has ended: a command would change nothing"}
        else:
            msg, reply = answer_command(text, self.config.classes, t_us)
        if msg is None:
            self.refused += 1
            self.log.warning("%s: refused a command from the page: %s", self.name, reply["error"])
            return reply
        self._last_label_t = t_us
        self.accepted += 1
        self._commands.put(msg)
        self.log.info("%s: command from the page: %s", self.name, reply)
        return reply

    @override
    async def start(self) -> None:
        self.server.start()
        self.log.info("%s: dashboard at %s", self.name, self.server.url)

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        self.state.update(msg)
        return ()

    @override
    def background_pending(self) -> bool:
        return not self._commands.empty()

    @override
    async def background_ready(self) -> Sequence[Message]:
        out = []
        while not self._commands.empty():
            out.append(self._commands.get_nowait())
        return out

    @override
    async def flush(self) -> Sequence[Message]:
        self.state.ended = True
        return await self.background_ready()

    @override
    async def stop(self) -> None:
        self.state.ended = True
        if not self.config.keep_serving:
            self.server.stop()

    @override
    def results(self) -> dict[str, Any]:
        return {
            "dashboard_address": self.server.address,
            "dashboard_accepted": self.accepted,
            "dashboard_refused": self.refused,
            "dashboard_frames_sent": self.state.frames_sent,
            "dashboard_frames_dropped": self.state.frames_dropped,
            "dashboard_tap_lost": self.state.tap_lost,
        }
