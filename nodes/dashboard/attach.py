"""Attach a dashboard to any graph without editing its file (``spikestream run CONFIG --dashboard``).

The transform adds a ``dashboard`` node, a tap from every node to it, and one lossless link from it into
the graph for the page's commands: to the first learning node (an STDP, DECOLLE or SDNN node, else the
classifier), so that labels and control travel down the learning chain in order and "freeze features"
reaches the features. A graph without a learning node gets a read-only dashboard.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from pipeline.config import GraphConfig, NodeSpec
from pipeline.errors import ConfigError

from .node import is_loopback

DEFAULT_ADDRESS = "127.0.0.1:8050"
#: Messages a tap may queue (each end) in a graph with an attached dashboard.
DASHBOARD_TAP_HWM = 16


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` as (host, port); the host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"--dashboard expects [HOST:]PORT with a port in 0..65535, got {text!r}"
        raise ConfigError(msg)
    return host, int(port)


#: Node types that learn from the labels that pass through them, in the order a command prefers them.
LEARNERS = ("stdp", "decolle", "sdnn", "classifier")


def _teaching_target(graph: GraphConfig) -> str | None:
    """The first learning node along the links (no learning node sends to it), so that labels and control
    travel down the whole learning chain in order; among several such, an STDP node before a DECOLLE or
    SDNN node before a classifier."""
    learners = [n for n, spec in graph.nodes.items() if spec.type in LEARNERS]
    sources = [n for n in learners if not any(graph.nodes[u].type in LEARNERS for u in _above(graph, n))]
    return min(sources, key=lambda n: LEARNERS.index(graph.nodes[n].type), default=None)


def _above(graph: GraphConfig, name: str) -> set[str]:
    """Every node that reaches ``name`` over lossless links."""
    seen: set[str] = set()
    todo = list(graph.upstream(name))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.upstream(node))
    return seen


def attach_dashboard(graph: GraphConfig, address: str = DEFAULT_ADDRESS, **params: Any) -> GraphConfig:
    """``graph`` with a dashboard on ``address`` (``[HOST:]PORT``) tapping every node; ``params`` are more
    of its parameters (``token``, ``keep_serving`` ...). Its ``classes`` are the classifier's."""
    host, port = parse_address(address)
    name = "dashboard"
    while name in graph.nodes:
        name += "_"
    target = _teaching_target(graph)
    classifiers = [s for s in graph.nodes.values() if s.type == "classifier"]
    table: dict[str, Any] = {"host": host, "port": port}
    if classifiers and "classes" in classifiers[0].params:
        table["classes"] = classifiers[0].params["classes"]
    table |= params
    if not table.get("token") and not is_loopback(host):  # made here, so that whoever attached it can say it
        table["token"] = secrets.token_urlsafe(16)
    spec = NodeSpec(name=name, type="dashboard", params=table)
    return dataclasses.replace(
        graph,
        nodes={**graph.nodes, name: spec},
        taps=(*graph.taps, *((n, name) for n in graph.nodes)),
        links=(*graph.links, (name, target)) if target else graph.links,
        tap_hwm=min(graph.tap_hwm, DASHBOARD_TAP_HWM),
    )


def dashboard_url(graph: GraphConfig) -> str | None:
    """Where to open the page of the dashboard ``attach_dashboard`` added (with its token), if any."""
    for spec in graph.nodes.values():
        if spec.type == "dashboard":
            host, port, token = (
                spec.params.get("host", "127.0.0.1"),
                spec.params.get("port", 8050),
                spec.params.get("token"),
            )
            return f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    return None
