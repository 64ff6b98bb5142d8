"""Graph configuration: TOML files, ``--set`` overrides, and typed per-node parameter dataclasses.

A graph file::

    name = "passthrough"
    transport = "ipc"                      # inproc (one process) | ipc | tcp (one process per node)
    links = ["source -> relay", "relay -> sink"]   # lossless PUSH/PULL
    taps = []                              # lossy PUB/SUB, drops counted at the subscriber

    [nodes.source]
    type = "synthetic"                     # looked up in the node registry
    events = 1_000_000

Keys of ``[nodes.NAME]`` other than the runtime keys (``type``, ``address``, ``bind``, ``tap_address``,
``tap_bind``) are the node's parameters and are checked against its frozen config dataclass: an unknown
key is an error naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .overrides import apply_overrides
from .tagged import pick_member, tagged_members

TRANSPORTS = ("inproc", "ipc", "tcp")
NODE_RUNTIME_KEYS = ("type", "address", "bind", "tap_address", "tap_bind", "curve", "max_age_ms")


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """One node of a graph as written in the file: its type, parameters and network addresses."""

    name: str
    type: str
    params: Mapping[str, Any]
    address: str | None = None  # where upstream nodes reach this node's input (tcp://host:port)
    bind: str | None = None  # what this node binds for its input, when it differs from ``address``
    tap_address: str | None = None
    tap_bind: str | None = None
    curve: Mapping[str, Any] | None = None
    #: Shed data messages (events, spikes) that reach this node more than this many ms after their source
    #: made them, whole and counted, instead of computing on stale input (0 = never: lossless). For the
    #: expensive stage of a live graph: what it answers is then never older than this plus its own work.
    max_age_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class GraphConfig:
    """A whole graph. ``source`` is the file it came from (for error messages)."""

    name: str
    transport: str
    nodes: dict[str, NodeSpec]
    links: tuple[tuple[str, str], ...]
    taps: tuple[tuple[str, str], ...] = ()
    #: Messages each end of a lossless link may hold (ZeroMQ's high-water mark): the queue between stages.
    hwm: int = 64
    tap_hwm: int = 256
    ipc_dir: str | None = None
    state_dir: str | None = None
    checkpoint_s: float = 60.0  # with a state folder: save every minute (0 = only at the end and on a stop)
    log_every_s: float = 5.0
    source: str = "<memory>"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def in_process(self) -> bool:
        """Whether every node runs in this process (``inproc``), not one process per node (ipc, tcp)."""
        return self.transport == "inproc"

    def upstream(self, name: str) -> list[str]:
        """The nodes that send to ``name`` over lossless links."""
        return [a for a, b in self.links if b == name]

    def downstream(self, name: str) -> list[str]:
        """The nodes ``name`` sends to over lossless links."""
        return [b for a, b in self.links if a == name]

    def tap_upstream(self, name: str) -> list[str]:
        """The nodes whose tap ``name`` subscribes to."""
        return [a for a, b in self.taps if b == name]

    def tapped(self, name: str) -> bool:
        """Whether some node subscribes to ``name``'s tap (it then binds a PUB socket)."""
        return any(a == name for a, _ in self.taps)

    def fed_by_taps_only(self, name: str) -> bool:
        """Whether ``name`` receives only through taps: it never sees an end-of-stream, so a run stops it
        once the nodes on lossless links have ended."""
        return bool(self.tap_upstream(name)) and not self.upstream(name)


def data_root(checkout: str | os.PathLike[str] | None = None) -> Path:
    """Where real recordings live: ``$SPIKESTREAM_DATA``, else ``../shared/recordings``.

    The default is relative to the current folder, which for the CLI is the checkout's root. Tests and
    benchmarks pass ``checkout`` (the repository's folder) so that they find the recordings beside it
    whatever folder they are started from."""
    env = os.environ.get("SPIKESTREAM_DATA")
    if env:
        return Path(env)
    if checkout is None:
        return Path("..") / "shared" / "recordings"
    return Path(checkout).resolve().parent / "shared" / "recordings"


def data_path(path: str | os.PathLike[str]) -> Path:
    """Resolve a data path from a config: absolute, or relative to the current folder if it exists there,
    else relative to ``data_root()``."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return data_root() / p


def where_looked(path: str | os.PathLike[str]) -> str:
    """Where ``data_path`` looked for ``path``, for a "not found" message."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return str(p)
    env = os.environ.get("SPIKESTREAM_DATA")
    root = f"$SPIKESTREAM_DATA = {env}" if env else f"{data_root()} ($SPIKESTREAM_DATA is not set)"
    return f"{p} in the current folder, then in {root}"


def _parse_link(item: Any, where: str) -> tuple[str, str]:
    if not isinstance(item, str) or "->" not in item:
        msg = f"{where}: a link is written 'a -> b', got {item!r}"
        raise ConfigError(msg)
    a, b = (s.strip() for s in item.split("->", 1))
    return a, b


def _cycle(links: tuple[tuple[str, str], ...]) -> list[str]:
    """A cycle of ``links`` as the nodes along it, its first node again at the end; empty when none."""
    after: dict[str, list[str]] = {}
    for a, b in links:
        after.setdefault(a, []).append(b)
    done: set[str] = set()  # nodes from which no cycle can be reached
    for start in after:
        if start in done:
            continue
        path = [start]
        todo = [iter(after.get(start, ()))]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:  # every way on from path[-1] is explored
                done.add(path.pop())
                todo.pop()
            elif nxt in path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done:
                path.append(nxt)
                todo.append(iter(after.get(nxt, ())))
    return []


def _max_age(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < float("inf"):
        msg = f"{where} must be a number of ms >= 0 (0 = never shed), got {value!r}"
        raise ConfigError(msg)
    return float(value)


def parse_graph(raw: Mapping[str, Any], source: str = "<memory>") -> GraphConfig:
    """Validate a raw TOML document as a graph (structure only; node parameters are checked later)."""
    known = {
        "name",
        "transport",
        "nodes",
        "links",
        "taps",
        "hwm",
        "tap_hwm",
        "ipc_dir",
        "state_dir",
        "checkpoint_s",
        "log_every_s",
        "description",
    }
    for key in raw:
        if key not in known:
            msg = f"{source}: unknown top-level key {key!r} (known: {', '.join(sorted(known))})"
            raise ConfigError(msg)
    transport = raw.get("transport", "inproc")
    if transport not in TRANSPORTS:
        msg = f"{source}: transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}"
        raise ConfigError(msg)
    raw_nodes = raw.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        msg = f"{source}: a graph needs a [nodes.NAME] table for each node"
        raise ConfigError(msg)
    nodes: dict[str, NodeSpec] = {}
    for name, table in raw_nodes.items():
        if not isinstance(table, dict):
            msg = f"{source}: nodes.{name} must be a table"
            raise ConfigError(msg)
        if "type" not in table or not isinstance(table["type"], str):
            msg = f"{source}: nodes.{name} has no 'type'"
            raise ConfigError(msg)
        params = {k: v for k, v in table.items() if k not in NODE_RUNTIME_KEYS}
        nodes[name] = NodeSpec(
            name=name,
            type=table["type"],
            params=params,
            address=table.get("address"),
            bind=table.get("bind"),
            tap_address=table.get("tap_address"),
            tap_bind=table.get("tap_bind"),
            curve=table.get("curve"),
            max_age_ms=_max_age(table.get("max_age_ms", 0.0), f"{source}: nodes.{name}.max_age_ms"),
        )
    links = tuple(_parse_link(x, f"{source}: links") for x in raw.get("links", []))
    taps = tuple(_parse_link(x, f"{source}: taps") for x in raw.get("taps", []))
    for kind, pairs in (("links", links), ("taps", taps)):
        for a, b in pairs:
            for end in (a, b):
                if end not in nodes:
                    msg = f"{source}: {kind} names node {end!r}, which is not in [nodes]"
                    raise ConfigError(msg)
            if a == b:
                msg = f"{source}: {kind} links {a!r} to itself"
                raise ConfigError(msg)
    if len(set(links)) != len(links):
        msg = f"{source}: a link is listed twice"
        raise ConfigError(msg)
    cycle = _cycle(links)
    if cycle:
        # every node waits for the end-of-stream of each node linked to it: around a cycle none ever comes
        msg = (
            f"{source}: links form a cycle, {' -> '.join(cycle)}: a stream through lossless links must end "
            "(a node that should see what comes later in the graph can subscribe to it with a tap)"
        )
        raise ConfigError(msg)

    def number(key: str, default: float, minimum: float) -> float:
        value = raw.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
            msg = f"{source}: {key} must be a number >= {minimum}, got {value!r}"
            raise ConfigError(msg)
        return value

    return GraphConfig(
        name=str(raw.get("name", Path(source).stem)),
        transport=transport,
        nodes=nodes,
        links=links,
        taps=taps,
        hwm=int(number("hwm", 64, 1)),
        tap_hwm=int(number("tap_hwm", 256, 1)),
        ipc_dir=raw.get("ipc_dir"),
        state_dir=raw.get("state_dir"),
        checkpoint_s=float(number("checkpoint_s", 60.0, 0.0)),
        log_every_s=float(number("log_every_s", 5.0, 0.0)),
        source=source,
        raw=raw,
    )


def load_graph(path: str | os.PathLike[str], overrides: list[str] | None = None) -> GraphConfig:
    """Read a graph TOML file, apply ``--set`` overrides, validate the structure."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        msg = f"config file not found: {p}"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{p}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    return parse_graph(apply_overrides(raw, overrides or [], str(p)), str(p))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a (simple) type annotation; ints are accepted for floats, lists for tuples,
    and a table meant for a union of tagged dataclasses (see ``pipeline.tagged``) is built as the one its ``type``
    names."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        kinds = tagged_members(args)
        if kinds and isinstance(value, dict):
            return build_params(pick_member(kinds, value, where), value, where)
        errors = []
        for arg in args:
            if arg is type(None) and value is None:
                return None
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            msg = f"{where} must be one of {', '.join(map(repr, args))}, got {value!r}"
            raise ConfigError(msg)
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            msg = f"{where} must be a list, got {value!r}"
            raise ConfigError(msg)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                msg = f"{where} must have {len(args)} items, got {len(value)}"
                raise ConfigError(msg)
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, dict):
            msg = f"{where} must be a table, got {value!r}"
            raise ConfigError(msg)
        return value
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, dict):
            msg = f"{where} must be a table, got {value!r}"
            raise ConfigError(msg)
        return build_params(annotation, value, where)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{where} must be a number, got {value!r}"
            raise ConfigError(msg)
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"{where} must be an integer, got {value!r}"
            raise ConfigError(msg)
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            msg = f"{where} must be true or false, got {value!r}"
            raise ConfigError(msg)
        return value
    if annotation is str:
        if not isinstance(value, str):
            msg = f"{where} must be a string, got {value!r}"
            raise ConfigError(msg)
        return value
    return value


def build_params(cls: type, table: Mapping[str, Any], where: str) -> Any:
    """Build the frozen dataclass ``cls`` from a TOML table, rejecting unknown keys and wrong types.

    ``where`` names the place for messages, e.g. ``"configs/demo.toml [nodes.stdp]"``. A field's
    ``__post_init__`` may raise ``ValueError``; it is reported as a ``ConfigError`` at the same place.
    """
    if not dataclasses.is_dataclass(cls):
        msg = f"{cls!r} is not a dataclass"
        raise TypeError(msg)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            msg = f"{where}: unknown key {key!r} (known: {', '.join(fields) or 'none'})"
            raise ConfigError(msg)
    kwargs = {key: _coerce(value, hints[key], f"{where} {key}") for key, value in table.items()}
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        msg = f"{where}: missing required key(s) {', '.join(missing)}"
        raise ConfigError(msg)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ConfigError(msg) from None
