"""``--set dotted.key=value`` overrides of a raw graph document, reaching into tables and list items."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from .errors import ConfigError


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value if it parses as one (``3``, ``2.5``, ``true``, ``[1, 2]``, ``"x"``),
    else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


_KEY_PART = re.compile(r"([^.\[\]]+)((?:\[-?\d+\])*)")


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides to a raw TOML document (returns a new dict).

    A key reaches into lists with an index: ``nodes.stdp.layers[0].maps=8`` (``[-1]``: the last item);
    a missing table on the way is created, a missing list item is an error naming the list's length."""
    import copy

    doc = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            msg = f"--set expects dotted.key=value, got {item!r}"
            raise ConfigError(msg)
        steps: list[str | int] = []
        for part in key.split("."):
            match = _KEY_PART.fullmatch(part)
            if match is None:
                msg = f"--set {key}: {part!r} is not a key (a name, then list indexes such as layers[0])"
                raise ConfigError(msg)
            steps.append(match.group(1))
            steps.extend(int(i) for i in re.findall(r"-?\d+", match.group(2)))
        target: Any = doc
        for n, step in enumerate(steps):
            last = n == len(steps) - 1
            where = _key_text(steps[:n])
            if isinstance(step, int):
                if not isinstance(target, list):
                    msg = f"--set {key}: {where} is not a list in {source}"
                    raise ConfigError(msg)
                if not -len(target) <= step < len(target):
                    have = f"{len(target)} items (0 to {len(target) - 1})" if target else "no items"
                    msg = f"--set {key}: {where} has {have} in {source}, so no item [{step}]"
                    raise ConfigError(msg)
            elif not isinstance(target, dict):
                msg = f"--set {key}: {where!r} is not a table in {source}"
                raise ConfigError(msg)
            if last:
                target[step] = parse_value(value.strip())
            elif isinstance(step, int):
                target = target[step]
            else:
                if step not in target and isinstance(steps[n + 1], int):
                    msg = f"--set {key}: {_key_text(steps[: n + 1])} is not in {source}, so it has no items"
                    raise ConfigError(msg)
                target = target.setdefault(step, {})
    return doc


def _key_text(steps: list[str | int]) -> str:
    """``steps`` written as a ``--set`` key: ``nodes.stdp.layers[0]``."""
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text
