"""ZeroMQ links between nodes.

* Lossless links are PUSH (sender, connects) → PULL (receiver, binds) with an explicit high-water mark:
  when the receiver falls behind, the sender's ``send`` waits (back-pressure); nothing is dropped.
  A node with several downstream nodes has one PUSH socket per link and sends every message on each.
* Taps are PUB (sender, binds) → SUB (receiver, connects). A slow subscriber loses messages on purpose;
  the subscriber sees the holes in the sequence numbers and counts them as ``drops``.
* Every receiver checks per-stream sequence numbers. On a lossless link a hole is a ``gap`` (logged, its
  size counted as ``missing``); a number seen before is a duplicate, dropped and counted; a jump ahead by
  more than ``jump_limit`` messages is more than a link can lose, so it is dropped and counted as a
  ``jump``, not as loss; a stream that is not one of the node's upstream links is refused (``malformed``).
  A stream that starts again at 0 is an upstream node that restarted. Warnings about bad messages are
  rate-limited per peer: the first few, then a count every ``WARN_EVERY_S``.
* A sender can watch its lossless links for the peer closing the connection (``watch_peers``): a node
  run alone learns that way that its downstream node has taken the end of the stream and ended.
* Payloads above ``COPY_THRESHOLD`` (1 MiB) are sent without a copy; below it, copying measured faster
  (benchmarks/RESULTS.md). Sends and receives first try the socket without waiting and only fall back to
  the event loop when they would block: that halves the per-message cost at small batch sizes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from .errors import TransportError, WireFormatError
from .message import EVENTS, SPIKES, Message
from .node import Counters
from .wire import decode, encode

log = logging.getLogger("spikestream.transport")

_NOBLOCK = int(zmq.NOBLOCK)  # plain ints: the enum members cost a few µs per call in pyzmq
_POLLIN = int(zmq.POLLIN)
_EVENTS = int(zmq.EVENTS)
_EVENT_KINDS = (EVENTS, SPIKES)  # the events counters count address events and spikes, not labels etc.

COPY_THRESHOLD = 1 << 20

#: warnings logged in full per peer and kind of fault; after them, one line every ``WARN_EVERY_S`` counts the rest
WARN_FIRST = 3
WARN_EVERY_S = 10.0


def jump_limit(hwm: int) -> int:
    """The largest hole in a lossless link's sequence that is counted as loss. A link holds at most ``hwm``
    messages at each end plus what the kernel's socket buffers between them hold (a few hundred KiB: fewer
    messages than that again, for data messages); 16 x ``hwm`` (at least 1,024) is well above all of it."""
    return max(16 * hwm, 1024)


@dataclass(frozen=True)
class Curve:
    """CURVE keys for one socket (z85 text). A server needs its secret key and, to refuse unknown
    clients, the list of allowed client public keys; a client needs its key pair and the server's
    public key."""

    public: bytes
    secret: bytes
    server_public: bytes | None = None


def _apply_curve(sock: zmq.Socket[Any], curve: Curve | None, server: bool) -> None:
    if curve is None:
        return
    if not zmq.has("curve"):
        msg = "this libzmq was built without CURVE support"
        raise TransportError(msg)
    sock.curve_publickey = curve.public
    sock.curve_secretkey = curve.secret
    if server:
        sock.curve_server = True
    else:
        if curve.server_public is None:
            msg = "a CURVE client needs the server's public key"
            raise TransportError(msg)
        sock.curve_serverkey = curve.server_public


def _bind(sock: zmq.Socket[Any], address: str) -> None:
    try:
        sock.bind(address)
    except zmq.ZMQError as exc:
        msg = f"cannot bind {address}: {exc}"
        raise TransportError(msg) from None


class Outlet:
    """The sending side of a node: PUSH sockets to each downstream node and an optional PUB tap. Open once
    constructed; ``async with`` closes it."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        connect: Sequence[str],
        *,
        hwm: int,
        tap_bind: str | None = None,
        tap_hwm: int = 256,
        counters: Counters,
        curve: Curve | None = None,
        watch_peers: bool = False,
    ) -> None:
        self.counters = counters
        self._pushes: list[zmq.asyncio.Socket] = []
        self._monitors: list[zmq.SyncSocket] = []  # sync views of the monitor sockets, one per link
        self._monitor_socks: list[zmq.asyncio.Socket] = []
        self._gone: list[bool] = []
        for address in connect:
            sock = ctx.socket(zmq.PUSH)
            sock.sndhwm = hwm
            # queue only to peers whose connection (and CURVE handshake) completed: otherwise messages
            # wait in a pipe to a peer that may never come, and are lost when the socket closes
            sock.immediate = True
            # a peer that binds after we connect is retried after 10 ms, then at growing intervals up to
            # libzmq's default of 100 ms (a graph's go waits for every link to connect)
            sock.reconnect_ivl = 10
            sock.reconnect_ivl_max = 100
            # closing waits until the peer has taken every queued message (a slow consumer may be many
            # seconds behind at end-of-stream); NodeRunner.close bounds the wait when stopping on a signal
            sock.linger = -1
            _apply_curve(sock, curve, server=False)
            sock.copy_threshold = COPY_THRESHOLD
            if watch_peers:
                mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
                self._monitor_socks.append(mon)
                self._monitors.append(zmq.Socket.shadow(mon.underlying))
                self._gone.append(False)
            sock.connect(address)
            self._pushes.append(sock)
        self._sync: list[zmq.SyncSocket] = [zmq.Socket.shadow(s.underlying) for s in self._pushes]
        self._pub: zmq.asyncio.Socket | None = None
        if tap_bind is not None:
            self._pub = ctx.socket(zmq.PUB)
            self._pub.sndhwm = tap_hwm
            self._pub.linger = 0
            self._pub.copy_threshold = COPY_THRESHOLD
            _bind(self._pub, tap_bind)

    async def send(self, msg: Message) -> None:
        """Send ``msg`` to every downstream node and the tap; waits (back-pressure) while a PUSH
        link is full, never on the tap, which drops when its subscribers lag."""
        frames = encode(msg)
        nbytes = sum(memoryview(f).nbytes for f in frames)
        for sock, sync in zip(self._pushes, self._sync, strict=True):
            while True:
                try:
                    sync.send_multipart(frames, flags=_NOBLOCK, copy=False)
                    break
                except zmq.Again:
                    pass
                try:
                    await sock.send_multipart(frames, copy=False)
                    break
                except zmq.Again:
                    continue
        if self._pub is not None:
            await self._pub.send_multipart(frames, copy=False)  # never blocks: PUB drops when full
        self.counters.messages_out += 1
        if msg.kind in _EVENT_KINDS:
            self.counters.events_out += msg.count
        self.counters.bytes_out += nbytes

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until every downstream link has a completed connection (with ``immediate`` a PUSH socket is
        writable only then); returns False if one has none after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for sock in self._pushes:
            left = deadline - time.monotonic()
            # (pyzmq's stub types the socket's poll like Poller.poll; it takes the flags)
            if left <= 0 or not await sock.poll(int(left * 1000), zmq.POLLOUT):  # type: ignore[call-arg]
                return False
        return True

    def forget_disconnects(self) -> None:
        """Start watching afresh: disconnections seen so far (a peer that restarted) no longer count."""
        for i, mon in enumerate(self._monitors):
            with contextlib.suppress(zmq.Again):
                while True:
                    recv_monitor_message(mon, zmq.NOBLOCK)
            self._gone[i] = False

    def peer_gone(self, i: int) -> bool:
        """Whether the peer of link ``i`` closed its connection since ``forget_disconnects`` (only with
        ``watch_peers``)."""
        mon = self._monitors[i]
        with contextlib.suppress(zmq.Again):
            while not self._gone[i]:
                if recv_monitor_message(mon, zmq.NOBLOCK)["event"] == zmq.EVENT_DISCONNECTED:
                    self._gone[i] = True
        return self._gone[i]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self, linger_ms: int | None = None) -> None:
        """Close the sockets; messages still queued are delivered within ``linger_ms`` (None: the
        context's termination waits for them)."""
        for sock in self._pushes:
            if self._monitors:
                sock.disable_monitor()
            sock.close(linger=linger_ms)
        for mon in self._monitor_socks:
            mon.close(linger=0)
        if self._pub is not None:
            self._pub.close(linger=0)


def _peer(frames: list[zmq.Frame]) -> str:
    """`` from <address>`` of the sender of a received message where the transport knows it (tcp), else ''."""
    try:
        address = frames[0].get("Peer-Address") if frames else ""
    except (zmq.ZMQError, AttributeError):
        return ""
    return f" from {address}" if address else ""


class _Warnings:
    """Warnings about bad messages, rate-limited per key (a fault and a peer): the first ``WARN_FIRST`` in
    full, then one line every ``WARN_EVERY_S`` with how many more came (a flood of 4,000 forged messages
    logs a handful of lines, not 4,000). Off the hot path: only bad messages reach it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._seen: dict[str, int] = {}
        self._held: dict[str, tuple[int, float, str]] = {}  # key -> (count, since, latest message)

    def warn(self, key: str, text: str) -> None:
        """Log ``text`` (about the fault and peer ``key``), or count it towards the next summary line."""
        seen = self._seen.get(key, 0) + 1
        self._seen[key] = seen
        if seen <= WARN_FIRST:
            more = f" (more {key} are summarised every {WARN_EVERY_S:.0f} s)" if seen == WARN_FIRST else ""
            log.warning("%s: %s%s", self.name, text, more)
            return
        now = time.monotonic()
        count, since, _ = self._held.get(key, (0, now, ""))
        self._held[key] = (count + 1, since, text)
        if now - since >= WARN_EVERY_S:
            self._summarise(key)

    def _summarise(self, key: str) -> None:
        count, since, latest = self._held.pop(key)
        log.warning(
            "%s: %d more %s in the last %.0f s (latest: %s)", self.name, count, key, time.monotonic() - since, latest
        )

    def close(self) -> None:
        """Log the counts still held back."""
        for key in list(self._held):
            self._summarise(key)


class Inlet:
    """The receiving side of a node: a bound PULL socket and SUB sockets to tapped nodes (neither, for a
    source: it then never receives). Open once constructed; ``async with`` closes it.

    ``links`` names the streams (upstream nodes) that its lossless links carry: a message of any other
    stream arriving on the PULL socket is refused. None accepts every stream (a probe, a benchmark)."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        *,
        name: str,
        bind: str | None,
        hwm: int,
        links: Collection[str] | None = None,
        tap_connect: Sequence[str] = (),
        tap_hwm: int = 256,
        counters: Counters,
        curve: Curve | None = None,
    ) -> None:
        self.name = name
        self.counters = counters
        self._links = None if links is None else frozenset(links)
        self._jump_limit = jump_limit(hwm)
        self._warnings = _Warnings(name)
        #: the last sequence number taken per stream; a stream is in it once its first message is taken,
        #: so the common case (the next number of a known stream) is one lookup and one comparison
        self._last_seq: dict[str, int] = {}
        self._tap_streams: set[str] = set()
        self._poller = zmq.asyncio.Poller()
        self._pull: zmq.asyncio.Socket | None = None
        self._subs: list[zmq.asyncio.Socket] = []
        self._ready: list[tuple[zmq.asyncio.Socket, bool]] = []
        if bind is not None:
            self._pull = ctx.socket(zmq.PULL)
            self._pull.rcvhwm = hwm
            self._pull.linger = 0
            _apply_curve(self._pull, curve, server=True)
            _bind(self._pull, bind)
            self._poller.register(self._pull, zmq.POLLIN)
            self._pull_sync: zmq.SyncSocket = zmq.Socket.shadow(self._pull.underlying)
        for address in tap_connect:
            sub = ctx.socket(zmq.SUB)
            sub.rcvhwm = tap_hwm
            sub.linger = 0
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(address)
            self._subs.append(sub)
            self._poller.register(sub, zmq.POLLIN)

    def _check_sequence(self, msg: Message, tapped: bool) -> bool:
        """Whether to take ``msg``, by its stream's sequence; counts and logs what is irregular."""
        last = self._last_seq.get(msg.stream)
        if last is not None and msg.seq == last + 1:  # the common case: the next message of a known stream
            self._last_seq[msg.stream] = msg.seq
            return True
        return self._irregular(msg, tapped, last)

    def _irregular(self, msg: Message, tapped: bool, last: int | None) -> bool:
        if msg.seq < 0:  # not stamped by a node (a hand-made message): nothing to check
            return True
        if tapped:  # a tap drops on purpose: its holes are drops, whatever their size
            self._last_seq[msg.stream] = msg.seq
            self.counters.drops += max(msg.seq - (0 if last is None else last + 1), 0)
            return True
        if self._links is not None and msg.stream not in self._links:
            self.counters.malformed += 1
            self._warnings.warn(
                "messages of unknown streams",
                f"message of stream {msg.stream!r}, which is not an upstream link of this node, refused",
            )
            return False
        expected = 0 if last is None else last + 1
        if msg.seq == 0 and last:  # the upstream node started again (a restarted service)
            log.warning("%s: stream %r started again at seq 0 (after %d)", self.name, msg.stream, last)
            self._last_seq[msg.stream] = 0
            return True
        if msg.seq < expected:
            self.counters.duplicates += 1
            self._warnings.warn(
                f"duplicates of stream {msg.stream!r}",
                f"stream {msg.stream!r}: seq {msg.seq} seen before (expected {expected}), duplicate dropped",
            )
            return False
        missing = msg.seq - expected
        if missing > self._jump_limit:
            self.counters.jumps += 1
            if last is None:  # a stream first seen mid-way (this node started after its upstream): take it
                self._last_seq[msg.stream] = msg.seq
            self._warnings.warn(
                f"sequence jumps of stream {msg.stream!r}",
                f"stream {msg.stream!r}: seq {msg.seq} jumps {missing:,} ahead of {expected}, more than a link "
                f"can lose ({self._jump_limit:,}): " + ("taken as its start" if last is None else "dropped"),
            )
            return last is None
        self._last_seq[msg.stream] = msg.seq
        if missing:
            self.counters.gaps += 1
            self.counters.missing += missing
            self._warnings.warn(
                f"gaps in stream {msg.stream!r}",
                f"gap in stream {msg.stream!r}: expected seq {expected}, got {msg.seq} ({missing} missing)",
            )
        return True

    async def _next_frames(self) -> tuple[list[zmq.Frame], bool]:
        if self._pull is not None and not self._subs:
            while True:
                try:
                    return self._pull_sync.recv_multipart(flags=_NOBLOCK, copy=False), False
                except zmq.Again:
                    pass
                try:
                    return await self._pull.recv_multipart(copy=False), False
                except zmq.Again:  # woken by an edge that the non-blocking path already consumed
                    continue
        while True:
            if not self._ready:
                events = await self._poller.poll()
                self._ready = [(sock, sock is not self._pull) for sock, _ in events]
            sock, tapped = self._ready.pop(0)
            try:
                frames = await sock.recv_multipart(copy=False, flags=zmq.NOBLOCK)
            except zmq.Again:
                continue
            if int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                self._ready.append((sock, tapped))
            return frames, tapped

    async def wait_readable(self) -> None:
        """Wait until a message can be received, without receiving it (safe to cancel): for a node that
        waits for its input and for something else at once."""
        if self._ready:
            return
        if self._pull is not None and not self._subs:
            while not int(self._pull_sync.getsockopt(_EVENTS)) & _POLLIN:
                # (pyzmq's stub types the socket's poll like Poller.poll; it takes the flags)
                await self._pull.poll(None, _POLLIN)  # type: ignore[call-arg]
            return
        events = await self._poller.poll()
        self._ready = [(sock, sock is not self._pull) for sock, _ in events]

    async def recv(self) -> Message:
        """The next well-formed message. Malformed ones are counted, logged and skipped."""
        while True:
            frames, tapped = await self._next_frames()
            self.counters.bytes_in += sum(f.buffer.nbytes for f in frames)
            try:
                msg = decode([f.buffer for f in frames])
            except WireFormatError as exc:
                self.counters.malformed += 1
                peer = _peer(frames)
                self._warnings.warn(f"malformed messages{peer}", f"malformed message{peer} dropped: {exc}")
                continue
            if not self._check_sequence(msg, tapped):
                continue
            self.counters.messages_in += 1
            if msg.kind in _EVENT_KINDS:
                self.counters.events_in += msg.count
            return msg

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets at once (``linger=0``): an inlet has nothing queued to deliver. Logs the counts of
        bad messages whose warnings were held back."""
        self._warnings.close()
        if self._pull is not None:
            self._pull.close(linger=0)
        for sub in self._subs:
            sub.close(linger=0)
