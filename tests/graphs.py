"""Graphs the tests share, built as plain dicts (what a graph file holds) and written as TOML when a test
needs a file: the ``synthetic -> identity -> checksum`` chain, the blocks of small learning graphs, and a
free TCP port. A test changes a graph by changing the dict, so what differs from the shared shape is
written in the test itself.

Everything a graph creates lives under the folder given as ``ipc_dir`` (the test's ``tmp_path``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- writing -------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """What ``tomllib`` gives back for ``value``: lists for tuples, strings for paths."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string: same escapes
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    msg = f"no TOML for {value!r}"
    raise TypeError(msg)


def _table(path: Sequence[str], table: Mapping[str, Any], out: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if path and (scalars or not table):
        out.append("\n[" + ".".join(_key(p) for p in path) + "]")
    out.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for k, v in table.items():
        if isinstance(v, dict):
            _table([*path, k], v, out)


def toml_text(doc: Mapping[str, Any]) -> str:
    """``doc`` as TOML: its keys, then one ``[table]`` per nested table (``[nodes.NAME]``)."""
    out: list[str] = []
    _table([], _plain(doc), out)
    text = "\n".join(out) + "\n"
    assert tomllib.loads(text) == _plain(doc), text  # the writer's own check: it reads back as given
    return text


def write_graph(path: Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` to ``path`` as TOML and return the path."""
    path.write_text(toml_text(doc))
    return path


# -- graphs and nodes ----------------------------------------------------------------------------------------


def graph(name: str, links: Sequence[str], nodes: Mapping[str, Any], **keys: Any) -> dict[str, Any]:
    """A graph document: ``name``, ``links``, the other top-level keys as given, then the nodes."""
    return {"name": name, **keys, "links": list(links), "nodes": dict(nodes)}


def chain(
    ipc_dir: Path,
    transport: str = "ipc",
    *,
    events: int = 1_000_000,
    batch: int = 7_919,
    tag: str = "t",
    delay_ms: int = 0,
) -> dict[str, Any]:
    """``source -> relay -> sink``: synthetic events, passed on unchanged (after ``delay_ms`` per message,
    when not 0), checksummed at the end."""
    relay: dict[str, Any] = {"type": "identity"} | ({"delay_ms": delay_ms} if delay_ms else {})
    return graph(
        f"chain-{tag}",
        ["source -> relay", "relay -> sink"],
        {
            "source": {"type": "synthetic", "events": events, "batch": batch},
            "relay": relay,
            "sink": {"type": "checksum"},
        },
        transport=transport,
        ipc_dir=str(ipc_dir),
        log_every_s=0,
    )


def chain_file(folder: Path, transport: str = "ipc", **options: Any) -> Path:
    """The ``chain`` graph with its sockets in ``folder``, written to ``folder/<transport>.toml``."""
    return write_graph(folder / f"{transport}.toml", chain(folder, transport, **options))


def conv(maps: int, th: float, *, th_inf: float | None = None, kernel: int = 5, **more: Any) -> dict[str, Any]:
    """A conv STDP layer whose two thresholds are ``th`` unless ``th_inf`` says otherwise."""
    return {
        "type": "conv",
        "maps": maps,
        "kernel": kernel,
        "th_learn": th,
        "th_inf": th if th_inf is None else th_inf,
        **more,
    }


def pool(size: int = 2) -> dict[str, Any]:
    return {"type": "pool", "size": size}


def fc(neurons: int, th: float, *, th_inf: float | None = None, **more: Any) -> dict[str, Any]:
    """A fully connected STDP layer, thresholds as for ``conv``."""
    return {"type": "fc", "neurons": neurons, "th_learn": th, "th_inf": th if th_inf is None else th_inf, **more}


#: conv 4 -> pool -> conv 8 -> pool -> fc 40 over 34x34 font digits: small enough for a test, learns enough to
#: tell runs apart (checkpoint resume, a network split over two nodes).
DIGIT_LAYERS = (
    conv(4, 8.0, a_minus=-0.01),
    pool(),
    conv(8, 30.0, a_minus=-0.01),
    pool(),
    fc(40, 30.0, a_minus=-0.01, wta_inf=True),
)


def font_digits(
    train: int, test: int, seed: int, phases: Sequence[Mapping[str, Any]] = (), **more: Any
) -> dict[str, Any]:
    """Font digits moved in saccades: by default ``train`` samples that teach, then ``test`` samples that
    only get decided."""
    if not phases:
        phases = [
            {"split": "train", "samples": train},
            {"split": "test", "samples": test, "features": False, "classifier": False},
        ]
    node = {"type": "saccades", "digits": "font", "font_train": train, "font_test": test, "seed": seed, **more}
    return node | {"phases": [dict(p) for p in phases]}


def encoder(side: int) -> dict[str, Any]:
    """Events into ON/OFF spike channels of a ``side`` x ``side`` sensor."""
    return {"type": "encoder", "output": [2, side, side]}


def stdp(shape: Sequence[int], layers: Sequence[Mapping[str, Any]], **more: Any) -> dict[str, Any]:
    return {"type": "stdp", "input": list(shape), **more, "layers": [dict(layer) for layer in layers]}
