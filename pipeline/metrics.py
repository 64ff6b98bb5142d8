"""A node's counters as ``metrics`` messages on its tap: how a viewer (a dashboard) learns how every stage
is doing without asking any of them.

A tapped node publishes its counters on its tap every ``METRICS_EVERY_S`` seconds while it runs, and once
more when it has ended, with ``final`` set and the counters of its report (what the results file says).
They go on the tap only, on a stream of their own (``<node>#metrics``): the lossless links never carry
them, a subscriber counts the ones its tap lost as ``drops``, and nodes see them only when they ask
(``Node.takes_metrics``). A node fed by taps only takes the final ones as the end of what it taps.
"""

from __future__ import annotations

import time
from typing import Any

from .message import METRICS, Message

#: Seconds between two metrics messages of a running node.
METRICS_EVERY_S = 1.0


def metrics_stream(node: str) -> str:
    """The stream id of ``node``'s metrics messages (not its own: its data's sequence stays whole)."""
    return f"{node}#metrics"


def counters_message(node: str, node_type: str, counters: dict[str, Any], *, final: bool = False) -> Message:
    """A metrics message saying that ``node`` (of type ``node_type``) has these ``counters`` now
    (``final``: they are those of its report)."""
    body = {"node": node, "type": node_type, "counters": counters, "final": final, "wall_ns": time.time_ns()}
    return Message(METRICS, body=body, created_ns=time.time_ns())


def is_final(msg: Message) -> bool:
    """Whether ``msg`` is the final metrics message of a node that has ended."""
    return msg.kind == METRICS and bool((msg.body or {}).get("final"))
