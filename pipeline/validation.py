"""Graph validation, done once before any node starts: every node's type, parameters, links and CURVE
keys, and whether linked nodes fit each other.

A typo or a mismatch is then one clear error naming the file and the node, not a crashed process or a lost
run. Validation builds each node's parameters once; a runner receives the built node and starts it as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import GraphConfig, build_params
from .errors import ConfigError
from .node import Node, NodeContext
from .registry import node_class
from .security import CurveSettings, curve_settings


@dataclass(frozen=True, kw_only=True)
class BuiltNode:
    """A node of a graph that passed validation: its class, its parameters and its CURVE settings."""

    name: str
    cls: type[Node]
    params: Any
    curve: CurveSettings

    def create(self, graph: GraphConfig) -> Node:
        """A new instance of the node in ``graph``. A parameter that only the node's own constructor
        checks (a file that must exist, say) is refused as a ``ConfigError`` naming the node."""
        context = NodeContext(
            name=self.name,
            graph=graph.name,
            upstream=tuple(graph.upstream(self.name)) + tuple(graph.tap_upstream(self.name)),
            downstream=tuple(graph.downstream(self.name)),
            log=logging.getLogger(f"spikestream.{self.name}"),
        )
        try:
            return self.cls(self.name, self.params, context)
        except (ValueError, TypeError) as exc:
            msg = f"{graph.source}: nodes.{self.name}: {exc}"
            raise ConfigError(msg) from None


def build_node(graph: GraphConfig, name: str) -> BuiltNode:
    """Check node ``name`` on its own: its type, its parameters, its links and its CURVE keys.

    A node run alone (its peers on other boxes) is checked this way; a whole graph by
    :func:`validate_graph`, which also checks the links between its nodes."""
    spec = graph.nodes[name]
    cls = node_class(spec.type)
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        msg = f"{graph.source}: nodes.{name}: type {spec.type!r} is not a Node"
        raise ConfigError(msg)
    params = build_params(cls.Config, spec.params, f"{graph.source} [nodes.{name}]")
    if cls.is_source and graph.upstream(name):
        msg = f"{graph.source}: nodes.{name} is a source and cannot have upstream links"
        raise ConfigError(msg)
    if not cls.is_source and not graph.upstream(name) and not graph.tap_upstream(name):
        msg = f"{graph.source}: nodes.{name} has no input: add a link 'x -> {name}'"
        raise ConfigError(msg)
    return BuiltNode(name=name, cls=cls, params=params, curve=curve_settings(graph, name))


def check_available(graph: GraphConfig, nodes: Mapping[str, BuiltNode]) -> None:
    """Let every node of ``nodes`` check that what it reads from this machine is there (its data), so that a
    missing file is one error before anything starts, not a node failing among started ones."""
    for name, node in nodes.items():
        try:
            node.cls.check_available(name, node.params)
        except ConfigError as exc:
            msg = f"{graph.source}: {exc}"
            raise ConfigError(msg) from None


def validate_graph(graph: GraphConfig) -> dict[str, BuiltNode]:
    """Check every node of ``graph`` and every link between them; return the built nodes by name."""
    nodes = {name: build_node(graph, name) for name in graph.nodes}
    _check_stream_facts(graph, nodes)
    return nodes


def _check_stream_facts(graph: GraphConfig, nodes: dict[str, BuiltNode]) -> None:
    """Pass each node's ``stream_facts`` down the links (sources first) and let every node refuse what it
    would receive. A fact two upstream nodes disagree on is dropped rather than guessed."""
    facts: dict[str, dict[str, Any]] = {}
    pending = list(graph.nodes)
    while pending:
        ready = [n for n in pending if all(u in facts for u in graph.upstream(n))]
        if not ready:  # a cycle, which parse_graph refuses: nothing more to check
            break
        for name in ready:
            pending.remove(name)
            received: dict[str, Any] = {}
            disputed: set[str] = set()
            for up in graph.upstream(name):
                for key, value in facts[up].items():
                    if key in received and received[key] != value:
                        disputed.add(key)
                    received.setdefault(key, value)
            for key in disputed:
                del received[key]
            node = nodes[name]
            try:
                facts[name] = dict(node.cls.stream_facts(node.params, received))
            except ConfigError as exc:  # the node's own parameters
                msg = f"{graph.source}: nodes.{name}: {exc}"
                raise ConfigError(msg) from None
            except ValueError as exc:  # what it would receive
                ups = graph.upstream(name)
                what = " and ".join(f"nodes.{u}" for u in ups) + (" send" if len(ups) > 1 else " sends")
                msg = f"{graph.source}: nodes.{name} does not fit what {what}: {exc}"
                raise ConfigError(msg) from None
