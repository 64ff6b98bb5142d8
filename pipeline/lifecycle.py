"""Stopping a run: the grace periods, the stop signals, and terminating a ZeroMQ context.

A stop request (Ctrl-C, SIGTERM) ends the sources' streams; every other node keeps going until the
end-of-stream reaches it or a grace period passes. The grace period is read from the environment when a run
starts, so a process (or a test) may set ``SPIKESTREAM_STOP_GRACE_S`` after importing the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import zmq

from .errors import ConfigError

log = logging.getLogger("spikestream.runner")

#: Seconds a stopping node gives its peers to end their streams or take its last messages, unless
#: ``SPIKESTREAM_STOP_GRACE_S`` says otherwise.
DEFAULT_STOP_GRACE_S = 10.0
#: How long a node of a graph waits for its downstream links to connect before it reports started anyway.
CONNECT_WAIT_S = 10.0


def stop_grace_s() -> float:
    """The stop grace period for a run starting now: ``$SPIKESTREAM_STOP_GRACE_S`` or the default."""
    text = os.environ.get("SPIKESTREAM_STOP_GRACE_S")
    if text is None:
        return DEFAULT_STOP_GRACE_S
    try:
        return float(text)
    except ValueError:
        msg = f"SPIKESTREAM_STOP_GRACE_S must be a number of seconds, got {text!r}"
        raise ConfigError(msg) from None


def install_stop_handlers(
    loop: asyncio.AbstractEventLoop, on_stop: Callable[[], None], stopped_by: list[str] | None = None
) -> None:
    """Call ``on_stop`` on SIGINT and SIGTERM (where this loop can take signals); the name of the first
    signal is appended to ``stopped_by``, when given (the exit status of a run says which it was)."""

    def stop(sig: signal.Signals) -> None:
        if stopped_by is not None and not stopped_by:
            stopped_by.append(sig.name)
        on_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop, sig)


def ignore_stop_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on.

    A node process that has ended only has its report left to write. A stop signal then (the supervisor
    stopping the graph because another node failed) must not kill it while it holds the report queue's
    lock, which every node shares: the other nodes could never report."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _StopWaiting(Exception):  # noqa: N818 - a signal to stop waiting, not an error
    """Raised by a signal that arrives while ``terminate`` waits for delivery."""


#: Contexts given up on by a stop signal. They stay referenced so that garbage collection never terminates
#: them (that would wait for the same stuck delivery again); the process exits without waiting for them.
_abandoned: list[zmq.Context[Any]] = []


def wait_for_ctrl_c() -> None:
    """Block until Ctrl-C or SIGTERM (a page served from another thread stays up meanwhile). Ctrl-C is
    Python's own here, whatever handler a library left installed."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def terminate(ctx: zmq.Context[Any], who: str) -> None:
    """Terminate ``ctx``, which waits until every message queued on its sockets is delivered.

    The wait is announced after two seconds, so that a slow consumer does not look like a hang. A peer
    that is alive but no longer reads (or a remote box gone without closing its connection) would make it
    endless: SIGINT or SIGTERM during the wait gives up, drops what is still queued and says so."""
    timer = threading.Timer(2.0, log.info, (f"{who}: waiting for downstream nodes to take the last queued messages",))
    timer.daemon = True
    timer.start()
    old: dict[int, Any] = {}
    waiting = False

    def give_up(signum: int, _frame: object) -> None:
        # only from inside ctx.term(): a signal just before or after it must not escape as an error (the
        # process is about to exit anyway)
        if waiting:
            raise _StopWaiting(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        # asyncio's own handlers only wake its loop, which is not running during this wait
        old = {sig: signal.signal(sig, give_up) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        waiting = True
        ctx.term()
        waiting = False
    except _StopWaiting as exc:
        waiting = False
        _abandoned.append(ctx)
        log.warning(
            "%s: %s while waiting for downstream nodes to take the last queued messages: those messages are dropped",
            who,
            exc,
        )
    finally:
        timer.cancel()
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
