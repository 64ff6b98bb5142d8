"""The wire format: a ZeroMQ multipart ``[topic, header, payload]``.

* ``topic``: the kind as ASCII (lets a SUB socket filter by kind);
* ``header``: small UTF-8 JSON object, see ``HEADER_FIELDS``;
* ``payload``: the raw bytes of the record array (little-endian, the kind's dtype), empty for control and
  metrics. Decoding wraps the received buffer with ``np.frombuffer`` (no copy) after checking its length
  against ``count * itemsize``. Nothing is ever pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import WireFormatError
from .events import prediction_dtype
from .message import CONTROL, CONTROL_COMMANDS, KINDS, METRICS, PREDICTIONS, Message

VERSION = 1

#: Header keys: v (format version), kind, stream (sender id), seq (per-stream sequence number), count
#: (records in the payload), t0/t1 (first/last timestamp, µs, when the payload has timestamps),
#: w/h (sensor width/height or null), created (ns wall clock at the source), classes (predictions only),
#: cmd (control only), body (control arguments / metrics object).
HEADER_FIELDS = (
    "v",
    "kind",
    "stream",
    "seq",
    "count",
    "t0",
    "t1",
    "w",
    "h",
    "created",
    "classes",
    "cmd",
    "body",
)

Frame = bytes | memoryview

#: Largest header accepted, in bytes (real headers are a few hundred bytes; metrics bodies a few KB).
MAX_HEADER_BYTES = 1 << 20
#: Most classes a ``predictions`` header may declare (a record holds one float64 score per class).
MAX_CLASSES = 1 << 16


def payload_dtype(kind: str, classes: int | None) -> np.dtype | None:
    """The payload dtype of ``kind`` (``None``: no payload); ``predictions`` need their ``classes``
    from the header, checked here because a peer sent them."""
    if kind == PREDICTIONS:
        if not isinstance(classes, int) or isinstance(classes, bool) or not 1 <= classes <= MAX_CLASSES:
            msg = f"predictions header needs 'classes' in [1, {MAX_CLASSES}], got {classes!r}"
            raise WireFormatError(msg)
        return prediction_dtype(classes)
    return KINDS[kind]


def encode(msg: Message) -> list[Frame]:
    """Encode ``msg`` as three frames. The payload frame is a view of the array, not a copy."""
    if msg.kind not in KINDS:
        text = f"cannot encode unknown kind {msg.kind!r}"
        raise WireFormatError(text)
    header: dict[str, Any] = {"v": VERSION, "kind": msg.kind, "stream": msg.stream, "seq": msg.seq}
    payload: Frame = b""
    count = 0
    if msg.data is not None:
        data = np.ascontiguousarray(msg.data)
        count = int(data.shape[0])
        if msg.kind == PREDICTIONS:
            header["classes"] = int(data.dtype["scores"].shape[0])
        if count and data.dtype.fields and "t" in data.dtype.fields:
            header["t0"] = int(data["t"][0])
            header["t1"] = int(data["t"][-1])
        payload = memoryview(data).cast("B") if count else b""  # type: ignore[arg-type]
    header["count"] = count
    if msg.width is not None:
        header["w"] = msg.width
    if msg.height is not None:
        header["h"] = msg.height
    if msg.created_ns:
        header["created"] = msg.created_ns
    if msg.command is not None:
        header["cmd"] = msg.command
    if msg.body is not None:
        header["body"] = msg.body
    return [msg.kind.encode("ascii"), json.dumps(header, separators=(",", ":")).encode(), payload]


def _int(header: dict[str, Any], key: str, *, optional: bool = False, minimum: int = 0) -> int | None:
    value = header.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        msg = f"header field {key!r} must be an integer >= {minimum}, got {value!r}"
        raise WireFormatError(msg)
    return value


def decode(frames: Sequence[Frame]) -> Message:
    """Decode three frames into a ``Message``; raises ``WireFormatError`` naming what is wrong.

    Whatever a peer sends, this raises nothing else: a receiving node counts the message as malformed
    and goes on.
    """
    if len(frames) != 3:
        msg = f"expected 3 frames [topic, header, payload], got {len(frames)}"
        raise WireFormatError(msg)
    topic, raw_header, payload = frames
    try:
        return _decode(topic, raw_header, payload)
    except WireFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything the checks below did not foresee is the sender's fault
        msg = f"undecodable message ({type(exc).__name__}: {exc})"
        raise WireFormatError(msg) from None


def payload_size(topic: Frame, raw_header: Frame) -> int:
    """The payload length in bytes that a message with this topic and header must have (0 for control and
    metrics), checking both as ``decode`` does. A message log reads this before it reads a payload, so a
    damaged length word is found as such, not mistaken for the end of the file."""
    try:
        _, dtype, count = _header(topic, raw_header)
    except WireFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - as in decode: a bad header is the sender's fault
        msg = f"undecodable header ({type(exc).__name__}: {exc})"
        raise WireFormatError(msg) from None
    return 0 if dtype is None else count * dtype.itemsize


def _header(topic: Frame, raw_header: Frame) -> tuple[dict[str, Any], np.dtype | None, int]:
    """The checked header, the payload dtype (None: no payload) and the record count."""
    header_bytes = memoryview(raw_header).nbytes
    if header_bytes > MAX_HEADER_BYTES:
        msg = f"header is {header_bytes} bytes (at most {MAX_HEADER_BYTES})"
        raise WireFormatError(msg)
    try:
        header = json.loads(bytes(raw_header))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, over-long integers, deep nesting
        msg = f"header is not JSON: {type(exc).__name__}: {str(exc)[:200]}"
        raise WireFormatError(msg) from None
    if not isinstance(header, dict):
        msg = f"header must be a JSON object, got {type(header).__name__}"
        raise WireFormatError(msg)
    if header.get("v") != VERSION:
        msg = f"unsupported wire version {header.get('v')!r} (this side speaks {VERSION})"
        raise WireFormatError(msg)
    kind = header.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        msg = f"unknown kind {kind!r}; known: {', '.join(KINDS)}"
        raise WireFormatError(msg)
    if bytes(topic) != kind.encode("ascii"):
        msg = f"topic {bytes(topic)!r} does not match kind {kind!r}"
        raise WireFormatError(msg)
    count = _int(header, "count")
    assert count is not None
    if kind in (CONTROL, METRICS):
        if count:
            msg = f"{kind} message must have no payload, got count {count}"
            raise WireFormatError(msg)
        command = header.get("cmd")
        if kind == CONTROL and (not isinstance(command, str) or command not in CONTROL_COMMANDS):
            msg = f"unknown control command {command!r}; known: {', '.join(CONTROL_COMMANDS)}"
            raise WireFormatError(msg)
        return header, None, 0
    return header, payload_dtype(kind, header.get("classes")), count


def _decode(topic: Frame, raw_header: Frame, payload: Frame) -> Message:
    header, dtype, count = _header(topic, raw_header)
    kind = header["kind"]
    stream = header.get("stream")
    if not isinstance(stream, str):
        msg = f"header field 'stream' must be a string, got {stream!r}"
        raise WireFormatError(msg)
    seq = _int(header, "seq", minimum=-1)
    width = _int(header, "w", optional=True)
    height = _int(header, "h", optional=True)
    created = _int(header, "created", optional=True) or 0
    body = header.get("body")
    if body is not None and not isinstance(body, dict):
        msg = f"header field 'body' must be an object, got {type(body).__name__}"
        raise WireFormatError(msg)
    nbytes = memoryview(payload).nbytes
    data = None
    if dtype is None:
        if nbytes:
            msg = f"{kind} message must have no payload, got {nbytes} bytes"
            raise WireFormatError(msg)
    else:
        expected = count * dtype.itemsize
        if nbytes != expected:
            msg = f"{kind} payload is {nbytes} bytes but count {count} x itemsize {dtype.itemsize} = {expected}"
            raise WireFormatError(msg)
        data = np.frombuffer(payload, dtype=dtype, count=count) if count else np.empty(0, dtype=dtype)
    return Message(
        kind,
        data,
        stream=stream,
        seq=seq,  # type: ignore[arg-type]
        width=width,
        height=height,
        created_ns=created,
        command=header.get("cmd"),
        body=body,
    )
