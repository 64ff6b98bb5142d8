"""TOML text of plain values and documents: the values a sweep passes as ``--set`` overrides, and the best
configuration written back as a graph file that ``spikestream run`` takes."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    """``key`` as a TOML key: bare when it may be, else quoted."""
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """``value`` (bool, int, float, str, list, table) as an inline TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(float(value))  # a numpy float is a float whose repr is not a number
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if hasattr(value, "item"):  # a numpy scalar, as search spaces give
        return toml_value(value.item())
    msg = f"no TOML value for {type(value).__name__}: {value!r}"
    raise TypeError(msg)


def toml_document(doc: Mapping[str, Any], header: str = "") -> str:
    """``doc`` as a TOML file: plain keys first, then one ``[table]`` per nested table (lists of tables
    stay inline, as the graph files write their layers and phases). ``header``: comment lines on top."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table(doc, [], lines)
    return "\n".join(lines).strip("\n") + "\n"


def _table(doc: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    plain = {k: v for k, v in doc.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in doc.items() if isinstance(v, Mapping)}
    if path and (plain or not tables):
        lines.append("")
        lines.append("[" + ".".join(toml_key(p) for p in path) + "]")
    lines.extend(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in plain.items())
    for key, sub in tables.items():
        _table(sub, [*path, str(key)], lines)
