"""The dashboard's web server: the page, its WebSocket, and ``GET /api/status``.

It runs in a thread of its own with its own event loop, so that drawing frames and talking to browsers
never runs in the graph's loop, and so that it can outlive the graph (``spikestream demo --dashboard``
keeps the last state on screen until Ctrl-C). Every ``1/fps`` s it sends each browser the current view
(what changes at most once a second, rates, kernels and per-layer spikes, once a second, and to a page
that just connected); a
browser still busy with the previous one (still sending it, or still drawing it: a page says when it has
drawn a frame) skips this one, counted in ``frames_dropped``: nothing queues up, nothing waits on it.

Commands come back over the same WebSocket as JSON text (``nodes.mqtt.commands``) and are handed to
``submit``, which validates them with the one command implementation. A server with a ``token`` takes
commands only from pages opened with ``?token=...``; the others are read-only and told why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from typing_extensions import override

from .site import ThreadedSite
from .state import DashboardState

STATIC = Path(__file__).resolve().parent / "static"
#: Longest command a page may send (bytes); commands are a few dozen.
MAX_COMMAND_BYTES = 4096
#: What a page sends when it has drawn a frame: the next goes only then, so that frames never queue up in
#: the socket of a page that draws slowly (they were seconds late at 1 M events/s on a loaded machine).
DRAWN = "drawn"


@dataclass(eq=False)
class _Client:
    """One connected page: its socket, whether it may teach (and why not), a lock held while sending, and
    whether it still draws the last frame sent (it says ``DRAWN`` when done)."""

    ws: web.WebSocketResponse
    can_teach: bool
    why_not: str
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    drawing: bool = False


class DashboardServer(ThreadedSite):
    """Serves ``state`` on ``host:port`` (0: any free port) from a thread; ``start`` returns once it
    listens (or raises ``DashboardError``), ``stop`` closes every connection and the thread."""

    def __init__(
        self,
        state: DashboardState,
        *,
        host: str,
        port: int,
        token: str,
        fps: float,
        submit: Callable[[str], dict[str, Any]],
        log: logging.Logger,
    ) -> None:
        super().__init__(host, port, "dashboard")
        self.state = state
        self.token = token
        self.period_s = 1.0 / fps
        self.submit = submit
        self.log = log
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slow_at = 0.0  #: when a view last carried what changes at most once a second
        self._new_page = False  #: a page connected since: the next view carries everything

    @property
    def url(self) -> str:
        """Where to open the page, with the token when one is needed to teach."""
        return self.address + (f"?token={self.token}" if self.token else "")

    # -- the site --------------------------------------------------------------------------------------
    @override
    def application(self) -> web.Application:
        self._connected = asyncio.Event()  # set while a page is connected
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/ws", self._websocket)
        app.router.add_static("/static", STATIC)
        return app

    @override
    async def serving(self) -> None:
        await self._broadcast()

    @override
    async def closing(self) -> None:
        # the last state goes to every page before the server closes: it stays on screen there
        last = json.dumps({"type": "view", **self.state.view()})
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send(client, last), 1.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.close(), 1.0)

    # -- routes ------------------------------------------------------------------------------------------
    async def _index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _status(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state.status())

    def _access(self, request: web.Request) -> tuple[bool, str]:
        if not self.token:
            return True, ""
        if secrets.compare_digest(request.query.get("token", ""), self.token):
            return True, ""
        return False, "read-only: this dashboard takes commands only from a page opened with its token (?token=...)"

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_COMMAND_BYTES)
        await ws.prepare(request)
        can_teach, why_not = self._access(request)
        client = _Client(ws, can_teach, why_not)
        self._clients.add(client)
        self._new_page = True
        self._connected.set()
        self.state.set_clients(len(self._clients))
        try:
            hello = {
                "type": "hello",
                "can_teach": can_teach,
                "read_only_reason": why_not,
                "classes": self.state.classes,
                "class_names": list(self.state.class_names),
                "fps": 1.0 / self.period_s,
            }
            async with client.sending:
                await ws.send_json(hello)
            async for m in ws:
                if m.type != WSMsgType.TEXT:
                    continue
                if m.data == DRAWN:
                    client.drawing = False
                    continue
                reply = self._command(client, m.data)
                async with client.sending:
                    await ws.send_json({"type": "reply", **reply})
        finally:
            self._clients.discard(client)
            self.state.set_clients(len(self._clients))
            if not self._clients:
                self._connected.clear()
        return ws

    def _command(self, client: _Client, text: str) -> dict[str, Any]:
        reply = self.submit(text) if client.can_teach else {"ok": False, "error": client.why_not}
        self.state.note_command(reply)
        return reply

    # -- frames ------------------------------------------------------------------------------------------
    async def _broadcast(self) -> None:
        while True:
            # with no page, sleep until one connects: a thread that wakes 10 times a second takes the GIL
            # from the graph's thread each time, and on a loaded machine each hand-over can cost a time slice
            await self._connected.wait()
            await asyncio.sleep(self.period_s)
            if not self._clients:
                continue
            now = time.monotonic()
            slow = self._new_page or now - self._slow_at >= 1.0
            if slow:
                self._slow_at, self._new_page = now, False
            payload = json.dumps({"type": "view", **self.state.view(slow=slow)})
            for client in list(self._clients):
                if client.sending.locked() or client.drawing:  # still busy with an earlier frame: skip this one
                    self.state.count_frame(sent=False)
                    continue
                task = asyncio.ensure_future(self._send(client, payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, client: _Client, payload: str) -> None:
        client.drawing = True
        async with client.sending:
            try:
                await client.ws.send_str(payload)
            except (ConnectionError, RuntimeError):  # gone meanwhile: its handler removes it
                return
        self.state.count_frame(sent=True)
