"""An aiohttp application served from a thread of its own, with its own event loop: what the dashboard's
server and a sweep's page share.

Serving from a thread keeps a page's work out of the loop it watches (a graph's, a sweep's driver), and
lets the page outlive what it shows until the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from aiohttp import web

from pipeline.errors import SpikestreamError


class DashboardError(SpikestreamError):
    """A page cannot be served (its address is taken, say); the message names the address."""


class ThreadedSite:
    """Serves ``application()`` on ``host:port`` (0: any free port) from a thread; ``what`` names it in
    errors. ``start``
    returns once it listens (or raises ``DashboardError``), ``stop`` closes it and its thread. Subclasses
    give the application and may run work beside it (``serving``) and before it closes (``closing``)."""

    def __init__(self, host: str, port: int, what: str) -> None:
        self.what = what
        self.host = host
        self.port = port
        self._ready = threading.Event()
        self._error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=what, daemon=True)

    @property
    def address(self) -> str:
        """Where the page is."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # (shown, not bound)
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Start serving; raises ``DashboardError`` when the address cannot be bound."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise DashboardError(self._error)

    def stop(self) -> None:
        """Close the server; returns once its thread has ended."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # (its loop may have closed meanwhile)
                loop.call_soon_threadsafe(stopping.set)
            self._thread.join(10)

    def application(self) -> web.Application:
        """The routes to serve."""
        raise NotImplementedError

    async def serving(self) -> None:
        """Work that runs while the site serves (cancelled when it stops)."""

    async def closing(self) -> None:
        """Last words to the pages before the site closes."""

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()
            self._ready.set()  # (a failure before it listened must not leave start() waiting)

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            self._error = f"{self.what}: cannot serve on {self.host}:{self.port}: {exc.strerror or exc}"
            await runner.cleanup()
            return
        self.port = int(runner.addresses[0][1])
        self._ready.set()
        work = asyncio.ensure_future(self.serving())
        try:
            await self._stopping.wait()
        finally:
            work.cancel()
            await self.closing()
            await runner.cleanup()
