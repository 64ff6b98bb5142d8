"""Where each node of a graph binds its input and tap, and where its peers connect to them."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import GraphConfig
from .errors import ConfigError


@dataclass(frozen=True)
class Endpoints:
    """Where one node's input and tap live: what it binds and what others connect to."""

    in_bind: str | None
    in_connect: str | None
    tap_bind: str | None
    tap_connect: str | None


def free_port() -> int:
    """A tcp port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resolve_endpoints(graph: GraphConfig, run_dir: str | None, *, pick_ports: bool) -> dict[str, Endpoints]:
    """Addresses of every node's input and tap socket for the graph's transport.

    ipc sockets live in the graph's ``ipc_dir``, else in ``run_dir``, else in a folder of this user in the
    temporary directory. A tcp address the graph leaves out is a free local port with ``pick_ports`` (a
    whole graph on one box), else an error (a node run alone must know where its peers are)."""
    out: dict[str, Endpoints] = {}
    for name, spec in graph.nodes.items():
        has_input = bool(graph.upstream(name))
        has_tap = graph.tapped(name)
        if graph.in_process:
            base = f"inproc://{graph.name}/{name}"
            inp, tap = base + "/in", base + "/tap"
            out[name] = Endpoints(inp if has_input else None, inp, tap if has_tap else None, tap)
        elif graph.transport == "ipc":
            folder = graph.ipc_dir or run_dir
            if folder is None:
                folder = os.path.join(tempfile.gettempdir(), f"spikestream-{graph.name}-{os.getuid()}")
            Path(folder).mkdir(parents=True, exist_ok=True)
            inp, tap = f"ipc://{folder}/{name}.in", f"ipc://{folder}/{name}.tap"
            out[name] = Endpoints(inp if has_input else None, inp, tap if has_tap else None, tap)
        else:

            def tcp(
                addr: str | None, bind: str | None, what: str, needed: bool, name: str = name
            ) -> tuple[str | None, str | None]:
                if not needed:
                    return None, addr
                if addr is None:
                    if not pick_ports:
                        msg = f"{graph.source}: nodes.{name} needs '{what}' (tcp://host:port) for the tcp transport"
                        raise ConfigError(msg)
                    addr = f"tcp://127.0.0.1:{free_port()}"
                return bind or addr, addr

            in_bind, in_connect = tcp(spec.address, spec.bind, "address", has_input)
            tap_bind, tap_connect = tcp(spec.tap_address, spec.tap_bind, "tap_address", has_tap)
            out[name] = Endpoints(in_bind, in_connect, tap_bind, tap_connect)
    return out
