"""A node's background outputs: work it finished in threads of its own, sent as soon as it is done.

A node with background work (``Node.background_pending``) hands its results over through
``background_ready``; the runner waits for them and for its next input at once, so neither waits on the
other, and drains them all before anything that must follow every earlier output (a control message, a
checkpoint, the end of the stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from .message import Message
from .node import Node
from .transport import Inlet

Send = Callable[[Iterable[Message]], Awaitable[None]]
OnError = Callable[[str, BaseException], None]


async def next_message(node: Node, inlet: Inlet, send: Send, on_error: OnError) -> Message:
    """The next input message; meanwhile the node's background outputs go out as soon as they are done."""
    while node.background_pending():
        readable = asyncio.ensure_future(inlet.wait_readable())
        ready = asyncio.ensure_future(node.background_ready())
        try:
            await asyncio.wait((readable, ready), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (readable, ready):
                task.cancel()  # no-op when done; a cancelled background_ready() has taken nothing
        await asyncio.wait((readable, ready))  # settled: done or cancelled
        if not ready.cancelled():
            error = ready.exception()
            if error is not None:
                on_error("background processing", error)
            elif out := ready.result():
                await send(out)
        if not readable.cancelled():
            readable.result()  # (an inlet that failed fails here, as its recv would)
            break
    return await inlet.recv()


async def drain(node: Node, send: Send, on_error: OnError) -> None:
    """Send every background output of the node: before a control message, a checkpoint and flush."""
    while node.background_pending():
        try:
            out = await node.background_ready()
        except Exception as exc:  # noqa: BLE001 - a stage's bug costs one message, not the graph
            on_error("background processing", exc)
            continue
        if out:
            await send(out)
