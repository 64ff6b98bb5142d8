"""Control commands: the one implementation and the one validation of what a person may ask a running
graph to do. Front ends (the MQTT ``teach`` source, later a browser dashboard) only carry the text.

A command is a JSON object::

    {"cmd": "freeze"}                      -> control "freeze"   (optional "scope": "features"|"classifier"|...)
    {"cmd": "unfreeze"}                    -> control "unfreeze" (same optional "scope")
    {"cmd": "snapshot"}                    -> control "checkpoint" (every node with state saves it)
    {"cmd": "label", "label": 3}           -> a labels record: from now on the scene shows class 3
    {"cmd": "label", "label": null}        -> ... shows nothing known (-1; "unknown" means the same)
    {"cmd": "label", "label": 3, "train": false}   -> evaluate only: the classifier must not learn from it

Each command gets a reply: ``{"ok": true, "cmd": ..., ...}`` when it was accepted, ``{"ok": false,
"error": "why"}`` when it was refused (not JSON, not an object, unknown command or key, label outside
-1..classes-1, wrong types); a refused command changes nothing. A request may carry an ``"id"`` (string or
number); the reply repeats it.

A label record's ``t`` is the wall-clock time in microseconds since the Unix epoch when the command is
parsed (``now_us()``): the classifier aligns labels with event timestamps, so a graph taught live must
stamp its events with wall-clock microseconds too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from pipeline.events import LABEL_DTYPE, UNKNOWN_LABEL
from pipeline.message import CHECKPOINT, FREEZE, UNFREEZE, Message, control_message, labels_message

COMMANDS = ("freeze", "unfreeze", "snapshot", "label")
_CONTROL = {"freeze": FREEZE, "unfreeze": UNFREEZE, "snapshot": CHECKPOINT}
_KEYS = {
    "freeze": {"cmd", "id", "scope"},
    "unfreeze": {"cmd", "id", "scope"},
    "snapshot": {"cmd", "id"},
    "label": {"cmd", "id", "label", "train"},
}


class CommandError(ValueError):
    """A control command that is refused; the message says why."""


def now_us() -> int:
    """Wall-clock time in microseconds since the Unix epoch (the time base of live labels)."""
    return time.time_ns() // 1000


def parse_command(payload: bytes | str, classes: int, t_us: int | None = None) -> tuple[Message, dict[str, Any]]:
    """Validate one command; return the message for the graph and the reply's body.

    Raises ``CommandError`` naming what is wrong. ``t_us`` is the label time (default: ``now_us()``)."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"not JSON: {exc}"
        raise CommandError(msg) from None
    if not isinstance(doc, dict):
        msg = f"a command must be a JSON object, got {type(doc).__name__}"
        raise CommandError(msg)
    cmd = doc.get("cmd")
    if cmd not in COMMANDS:
        msg = f"unknown cmd {cmd!r}; known: {', '.join(COMMANDS)}"
        raise CommandError(msg)
    extra = sorted(set(doc) - _KEYS[cmd])
    if extra:
        msg = f"unknown key(s) for {cmd!r}: {', '.join(extra)}; allowed: {', '.join(sorted(_KEYS[cmd]))}"
        raise CommandError(msg)
    reply: dict[str, Any] = {"cmd": cmd}
    if "id" in doc:
        if not isinstance(doc["id"], str | int) or isinstance(doc["id"], bool):
            msg = f"id must be a string or an integer, got {doc['id']!r}"
            raise CommandError(msg)
        reply["id"] = doc["id"]
    if cmd in _CONTROL:
        body: dict[str, Any] = {}
        if "scope" in doc:
            if not isinstance(doc["scope"], str) or not doc["scope"]:
                msg = f"scope must be a non-empty string, got {doc['scope']!r}"
                raise CommandError(msg)
            body["scope"] = reply["scope"] = doc["scope"]
        return control_message(_CONTROL[cmd], **body), reply
    if "label" not in doc:
        msg = '"label" needs a "label": a class number, null or "unknown"'
        raise CommandError(msg)
    label = doc["label"]
    if label is None or label == "unknown":
        label = UNKNOWN_LABEL
    if not isinstance(label, int) or isinstance(label, bool):
        msg = f"label must be an integer, null or 'unknown', got {label!r}"
        raise CommandError(msg)
    if not UNKNOWN_LABEL <= label < classes:
        msg = f"label {label} out of range -1..{classes - 1}"
        raise CommandError(msg)
    train = doc.get("train", True)
    if not isinstance(train, bool):
        msg = f"train must be true or false, got {train!r}"
        raise CommandError(msg)
    rec = np.zeros(1, dtype=LABEL_DTYPE)
    rec["t"] = now_us() if t_us is None else t_us
    rec["label"] = label
    rec["train"] = train
    reply |= {"label": label, "train": train, "t": int(rec["t"][0])}
    return labels_message(rec), reply


def answer_command(
    payload: bytes | str, classes: int, t_us: int | None = None
) -> tuple[Message | None, dict[str, Any]]:
    """The message a command asks for (``None`` if refused) and the reply to send back."""
    try:
        msg, reply = parse_command(payload, classes, t_us)
    except CommandError as exc:
        return None, {"ok": False, "error": str(exc)}
    return msg, {"ok": True, **reply}
