"""Find node classes and CLI commands by name without importing any stage package here.

Stages declare themselves as entry points of the distribution (``pyproject.toml``)::

    [project.entry-points."spikestream.nodes"]
    replay = "nodes.sources.replay:ReplaySource"

A config may also name a class directly as ``"package.module:Class"``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from .errors import ConfigError

NODE_GROUP = "spikestream.nodes"
COMMAND_GROUP = "spikestream.commands"
TRANSFORM_GROUP = "spikestream.transforms"


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def node_types() -> dict[str, str]:
    """Registered node type names and their targets."""
    return {ep.name: ep.value for ep in entry_points(group=NODE_GROUP)}


def node_class(type_name: str) -> type:
    """The node class registered as ``type_name`` (or given as ``module:Class``)."""
    if ":" in type_name:
        try:
            return _load(type_name)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as exc:
            msg = f"cannot load node class {type_name!r}: {exc}"
            raise ConfigError(msg) from None
    types = node_types()
    if type_name not in types:
        msg = f"unknown node type {type_name!r}; registered: {', '.join(sorted(types))}"
        raise ConfigError(msg)
    return _load(types[type_name])  # type: ignore[no-any-return]


def commands() -> dict[str, Any]:
    """CLI sub-commands contributed by stage packages: name -> ``register(subparsers)`` callable."""
    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}


def graph_transform(name: str) -> Any:
    """The graph transform a stage package registers as ``name`` (``spikestream.transforms``): a function
    that takes a ``GraphConfig`` and returns another (``dashboard`` attaches a dashboard to any graph)."""
    found = {ep.name: ep for ep in entry_points(group=TRANSFORM_GROUP)}
    if name not in found:
        msg = f"no graph transform {name!r} is installed (known: {', '.join(sorted(found)) or 'none'})"
        raise ConfigError(msg)
    return found[name].load()
