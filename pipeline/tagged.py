"""Which member of a union of tagged dataclasses a config table names.

A layer table says what it is with ``type`` (conv, pool, fc) and, for layers with variants, ``rule``; the
loader builds the one dataclass of the union those keys name, and says so when a key belongs to a sibling.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from .errors import ConfigError

#: The keys that pick a member of a union of tagged dataclasses, in order: ``type`` names the kind (conv,
#: pool, fc ...), ``rule`` (where members have it) the variant of that kind (the STDP layers' learning rule).
TAG_KEYS = ("type", "rule")


def _tags(member: Any) -> dict[str, tuple[Any, ...]] | None:
    """The values each tag key of a dataclass accepts (its ``Literal[...]`` fields among ``TAG_KEYS``), or
    None when ``member`` is not a dataclass with a ``type: Literal[...]`` field."""
    if not (dataclasses.is_dataclass(member) and isinstance(member, type)):
        return None
    hints = typing.get_type_hints(member)
    tags: dict[str, tuple[Any, ...]] = {}
    for key in TAG_KEYS:
        if typing.get_origin(hints.get(key)) is typing.Literal:
            tags[key] = typing.get_args(hints[key])
    return tags if "type" in tags else None


def tagged_members(members: tuple[Any, ...]) -> list[tuple[type, dict[str, tuple[Any, ...]]]]:
    """For a union of dataclasses that each have a ``type: Literal[...]`` field (and maybe a ``rule``
    one), each member with its tag values, in union order; empty for any other union."""
    kinds: list[tuple[type, dict[str, tuple[Any, ...]]]] = []
    for member in members:
        if member is type(None):
            continue
        tags = _tags(member)
        if tags is None:
            return []
        kinds.append((member, tags))
    return kinds


def _values(kinds: list[tuple[type, dict[str, tuple[Any, ...]]]], key: str) -> str:
    seen: list[Any] = []
    for _, tags in kinds:
        seen.extend(v for v in tags.get(key, ()) if v not in seen)
    return ", ".join(map(repr, seen))


def pick_member(kinds: list[tuple[type, dict[str, tuple[Any, ...]]]], value: dict[str, Any], where: str) -> type:
    """The member ``value``'s tag keys name: by ``type``, then by each further tag key (absent:
    the first member of that ``type`` in union order, the default). A key that only another member of the
    same ``type`` knows is reported as belonging to that member's variant, with the path."""
    if "type" not in value:
        msg = f"{where}: missing required key(s) type (one of {_values(kinds, 'type')})"
        raise ConfigError(msg)
    same = [(cls, tags) for cls, tags in kinds if value["type"] in tags["type"]]
    if not same:
        msg = f"{where} type must be one of {_values(kinds, 'type')}, got {value['type']!r}"
        raise ConfigError(msg)
    chosen = same
    for key in TAG_KEYS[1:]:
        if key in value:
            chosen = [(cls, tags) for cls, tags in chosen if value[key] in tags.get(key, ())]
            if not chosen:
                msg = (
                    f"{where} {key} must be one of {_values(same, key)} for type {value['type']!r}, got {value[key]!r}"
                )
                raise ConfigError(msg)
    cls, tags = chosen[0]
    known = {f.name for f in dataclasses.fields(cls)}
    for key in value:
        if key in known:
            continue
        for other, other_tags in same:
            if key in {f.name for f in dataclasses.fields(other)}:
                variant = next((k for k in TAG_KEYS[1:] if k in tags and k in other_tags), None)
                if variant is not None:
                    msg = (
                        f"{where}: key {key!r} is a parameter of {variant} {other_tags[variant][0]!r}, not of "
                        f"this layer's {variant} {tags[variant][0]!r} (set {variant} = "
                        f"{other_tags[variant][0]!r} or remove the key)"
                    )
                    raise ConfigError(msg)
    return cls
