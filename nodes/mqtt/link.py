"""Staying connected: what an MQTT node's reconnect loop learns about its broker over time.

Both MQTT nodes run the same visible loop (aiomqtt's reconnection pattern)::

    while True:
        try:
            async with link.client() as client:
                link.up()
                ...                      # use the connection until it fails (or the node is done)
        except aiomqtt.MqttError as exc:
            link.down(exc)
        await link.wait_before_retry()   # reconnect_min_s, doubling up to reconnect_max_s

``BrokerLink`` holds the client identifier, the backoff, the counters and the last error in words a
person can act on; each node keeps its own loop, because what it does while connected differs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt

from .broker import BrokerParams, describe_connect_error, make_client, read_password, tls_context


class BrokerLink:
    """One node's connection to its broker, attempt after attempt (see the module docstring)."""

    def __init__(
        self,
        node: str,
        params: BrokerParams,
        log: logging.Logger,
        *,
        will: aiomqtt.Will | None = None,
        max_inflight: int | None = None,
    ) -> None:
        # fail on unreadable credentials/certificates now, as a config error, not in a background loop
        read_password(params)
        tls_context(params)
        self.node = node
        self.params = params
        self.log = log
        self.identifier = params.client_id or f"spikestream-{node}-{uuid.uuid4().hex[:8]}"
        self.connects = 0  #: successful connections
        self.connect_failures = 0  #: attempts that never got through (or broke down unexpectedly)
        self.disconnects = 0  #: established connections lost
        self.last_error: str | None = None  #: why the last attempt failed; ``None`` once connected again
        self.is_up = False  #: the current attempt got through (so a later error is a lost connection)
        self._will = will
        self._max_inflight = max_inflight
        self._delay = params.reconnect_min_s

    @property
    def reconnects(self) -> int:
        """Successful connections after the first."""
        return max(0, self.connects - 1)

    @property
    def retry_in_s(self) -> float:
        """How long the next ``wait_before_retry`` sleeps."""
        return self._delay

    def client(self) -> aiomqtt.Client:
        """A fresh, not yet connected client for the next attempt."""
        return make_client(self.params, self.identifier, will=self._will, max_inflight=self._max_inflight)

    def up(self) -> None:
        """The attempt got through: count it, forget the last error, restart the backoff."""
        self.is_up = True
        self.connects += 1
        self.last_error = None
        self._delay = self.params.reconnect_min_s

    def down(self, exc: aiomqtt.MqttError, *, closing: bool = False) -> None:
        """Count and log an MQTT error: a lost connection, or a failed attempt (logged again when the
        reason changes and every tenth time, not on every retry)."""
        if self.is_up and not closing:
            self.disconnects += 1
            self.log.warning("%s: connection to MQTT broker %s lost: %s", self.node, self.params.broker, exc)
        else:
            self.connect_failures += 1
            why = describe_connect_error(self.params, exc)
            loud = self.last_error != why or self.connect_failures % 10 == 1
            self.last_error = why
            if loud:
                self.log.error("%s: %s; retrying in %.1f s", self.node, why, self._delay)
        self.is_up = False

    def broke(self, exc: Exception) -> None:
        """Count and log an unexpected error (a bug or an odd socket error), with its traceback."""
        self.connect_failures += 1
        self.last_error = f"MQTT broker {self.params.broker}: {exc!r}"
        self.log.error("%s: MQTT connection to %s failed", self.node, self.params.broker, exc_info=exc)
        self.is_up = False

    async def wait_before_retry(self) -> None:
        """Sleep the current backoff delay, then double it (up to ``reconnect_max_s``)."""
        self.log.info("%s: reconnecting to MQTT broker %s in %.1f s", self.node, self.params.broker, self._delay)
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, self.params.reconnect_max_s)
