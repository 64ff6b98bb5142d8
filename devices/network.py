"""A DV network stream client: events from a dv-processing ``NetworkWriter`` (DV software, or another
program) over TCP or a UNIX socket, with reconnection.

The server side is any AEDAT 4 event stream server, e.g. DV's "Network TCP/Unix socket server" output
module or ``dv.io.NetworkWriter``. ``DvNetworkSource`` connects with ``dv.io.NetworkReader``; all reads
run in a worker thread. When the server goes away (the reader stops running) or cannot be reached, it
retries with exponential backoff (``backoff_s``, doubling up to ``backoff_max_s``), logging every attempt
with its number and the peer, and resumes emitting when the server is back. ``attempts`` and
``timeout_s`` bound how long it keeps trying (0 = forever); then the stream ends with a ``DeviceError``.

The sensor size is read from the server's stream definition at each (re)connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from typing_extensions import override

from devices.camera import dv_events, poll_events
from pipeline.errors import DeviceError
from pipeline.message import Message, events_message
from pipeline.node import NodeContext, Source


@dataclass(frozen=True, kw_only=True)
class NetworkParams:
    """Parameters of ``DvNetworkSource``: a TCP peer (``host``, ``port``) or a UNIX socket (``path``)."""

    #: Server address for TCP (ignored when ``path`` is set).
    host: str = "127.0.0.1"
    #: Server TCP port (1..65535); required unless ``path`` is set.
    port: int = 0
    #: File system path of a UNIX socket server; when set, ``host``/``port`` are not used.
    path: str = ""
    #: First reconnection delay in seconds (> 0); doubles after each failed attempt.
    backoff_s: float = 0.1
    #: Longest reconnection delay in seconds (>= backoff_s).
    backoff_max_s: float = 5.0
    #: Give up after this many failed connection attempts in a row (0 = never).
    attempts: int = 0
    #: Give up after trying to (re)connect for this many seconds in a row (0 = never).
    timeout_s: float = 0.0
    #: How long one worker-thread read waits for data before handing control back, in seconds (> 0).
    poll_s: float = 0.01

    def __post_init__(self) -> None:
        if not self.path and not 1 <= self.port <= 65535:
            msg = f"port must be in 1..65535 (or set path for a UNIX socket), got {self.port}"
            raise ValueError(msg)
        if not self.backoff_s > 0 or self.backoff_max_s < self.backoff_s:
            msg = (
                f"need 0 < backoff_s <= backoff_max_s, got backoff_s={self.backoff_s}, "
                f"backoff_max_s={self.backoff_max_s}"
            )
            raise ValueError(msg)
        if self.attempts < 0 or self.timeout_s < 0:
            msg = f"attempts and timeout_s must be >= 0, got {self.attempts}, {self.timeout_s}"
            raise ValueError(msg)
        if not self.poll_s > 0:
            msg = f"poll_s must be > 0 s, got {self.poll_s}"
            raise ValueError(msg)

    @property
    def peer(self) -> str:
        """The server as written in log lines and errors: ``tcp://host:port`` or ``unix:path``."""
        return f"unix:{self.path}" if self.path else f"tcp://{self.host}:{self.port}"


def backoff_delay(attempt: int, first_s: float, max_s: float) -> float:
    """Delay before retry number ``attempt`` (1-based): ``first_s * 2**(attempt-1)``, at most ``max_s``."""
    if attempt < 1:
        msg = f"attempt must be >= 1, got {attempt}"
        raise ValueError(msg)
    return min(max_s, first_s * 2.0 ** min(attempt - 1, 60))


class DvNetworkSource(Source):
    """Events from a DV network stream, reconnecting when the server goes away (see the module doc)."""

    Config = NetworkParams
    config: NetworkParams

    def __init__(self, name: str, config: NetworkParams, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self._reader: Any = None
        self._events = 0
        self._connections = 0
        self._reconnects = 0
        self._disconnects = 0
        self._failed_attempts = 0
        self._camera = ""

    def _connect(self) -> Any:
        import dv_processing as dv

        c = self.config
        if c.path:
            return dv.io.NetworkReader(c.path)
        return dv.io.NetworkReader(c.host, c.port)

    async def _connect_with_retries(self) -> Any:
        """A connected reader; retries with backoff, raises ``DeviceError`` when the limits are reached."""
        c = self.config
        attempt = 0
        since = time.monotonic()
        while True:
            try:
                reader = await asyncio.to_thread(self._connect)
            except RuntimeError as exc:  # dv-processing reports refused/unreachable as RuntimeError
                attempt += 1
                self._failed_attempts += 1
                waited = time.monotonic() - since
                if (c.attempts and attempt >= c.attempts) or (c.timeout_s and waited >= c.timeout_s):
                    msg = (
                        f"cannot reach DV stream server {c.peer}: gave up after {attempt} attempts in "
                        f"{waited:.1f} s; last error: {str(exc).split(' [')[0]}"
                    )
                    raise DeviceError(msg) from None
                delay = backoff_delay(attempt, c.backoff_s, c.backoff_max_s)
                self.log.warning(
                    "%s: cannot reach %s (attempt %d%s): %s; retrying in %.2f s",
                    self.name,
                    c.peer,
                    attempt,
                    f"/{c.attempts}" if c.attempts else "",
                    str(exc).split(" [")[0],
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if self._connections:
                self._reconnects += 1
                self.log.warning(
                    "%s: reconnected to %s after %d failed attempt(s) (reconnection %d)",
                    self.name,
                    c.peer,
                    attempt,
                    self._reconnects,
                )
            self._connections += 1
            return reader

    @override
    async def produce(self) -> AsyncIterator[Message]:
        c = self.config
        while True:
            reader = await self._connect_with_retries()
            self._reader = reader
            res = reader.getEventResolution()
            width, height = (int(res[0]), int(res[1])) if res is not None else (None, None)
            self._camera = str(reader.getCameraName())
            self.log.info("%s: connected to %s (camera %s, %sx%s)", self.name, c.peer, self._camera, width, height)
            while True:
                kind, store = await asyncio.to_thread(poll_events, reader, c.poll_s)
                if kind == "gone":
                    break
                if kind == "events":
                    events = dv_events(store)
                    if events.shape[0]:
                        self._events += int(events.shape[0])
                        yield events_message(events, width, height)
            # poll_events reports 'gone' only once everything that arrived has been read
            self._disconnects += 1
            self._reader = None
            self.log.warning(
                "%s: DV stream server %s went away after %d events in all; reconnecting",
                self.name,
                c.peer,
                self._events,
            )

    @override
    def results(self) -> dict[str, Any]:
        return {
            "network_peer": self.config.peer,
            "network_events": self._events,
            "network_connections": self._connections,
            "network_reconnects": self._reconnects,
            "network_disconnects": self._disconnects,
            "network_failed_attempts": self._failed_attempts,
        }

    @override
    async def stop(self) -> None:
        self._reader = None
