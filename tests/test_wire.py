"""Wire format: round trips (Hypothesis) and every malformed-frame case names what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import WireFormatError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE, SPIKE_DTYPE, prediction_dtype
from pipeline.message import (
    Message,
    control_message,
    events_message,
    labels_message,
    metrics_message,
    predictions_message,
    spikes_message,
)
from pipeline.wire import MAX_HEADER_BYTES, decode, encode


def records(dtype: np.dtype, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=n * dtype.itemsize, dtype=np.uint8)
    out = raw.view(dtype).copy()
    if "scores" in dtype.names:
        out["scores"] = rng.normal(size=out["scores"].shape).astype(np.float32)
    return out


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Compare the fields (padding bytes of aligned records are not data)."""
    return a.dtype == b.dtype and all(np.array_equal(a[f], b[f], equal_nan=True) for f in a.dtype.names)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["events", "spikes", "labels", "predictions"]),
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
    seq=st.integers(-1, 2**40),
    size=st.one_of(st.none(), st.tuples(st.integers(1, 4096), st.integers(1, 4096))),
    classes=st.integers(1, 20),
)
def test_round_trip(kind, n, seed, seq, size, classes):
    dtype = {
        "events": EVENT_DTYPE,
        "spikes": SPIKE_DTYPE,
        "labels": LABEL_DTYPE,
        "predictions": prediction_dtype(classes),
    }[kind]
    data = records(dtype, n, seed)
    make = {
        "events": events_message,
        "spikes": spikes_message,
        "labels": labels_message,
        "predictions": predictions_message,
    }[kind]
    msg = make(data, *(size or (None, None))) if kind in ("events", "spikes") else make(data)
    msg = msg.stamped("src", seq, 123)
    frames = encode(msg)
    assert len(frames) == 3
    assert bytes(frames[0]) == kind.encode()
    back = decode([bytes(f) for f in frames])
    assert back.kind == kind
    assert back.stream == "src"
    assert back.seq == seq
    assert back.count == n
    assert same_bytes(back.data, data)
    if kind in ("events", "spikes"):
        assert (back.width, back.height) == (size or (None, None))
    header = json.loads(bytes(frames[1]))
    if n:
        assert header["t0"] == int(data["t"][0])
        assert header["t1"] == int(data["t"][-1])


@given(body=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4))
def test_control_and_metrics_round_trip(body):
    for msg in (control_message("checkpoint", **body), metrics_message(body)):
        back = decode(encode(msg.stamped("n", 3, 1)))
        assert back.kind == msg.kind
        assert back.command == msg.command
        assert back.data is None
        assert (back.body or {}) == (body or {})


def good_frames() -> list[bytes]:
    ev = np.zeros(4, EVENT_DTYPE)
    return [bytes(f) for f in encode(events_message(ev, 10, 10).stamped("s", 0, 1))]


def with_header(**changes) -> list[bytes]:
    topic, header, payload = good_frames()
    h = json.loads(header)
    for k, v in changes.items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return [topic, json.dumps(h).encode(), payload]


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        (good_frames()[:2], "expected 3 frames"),
        ([*good_frames(), b""], "expected 3 frames"),
        ([b"events", b"{not json", b""], "not JSON"),
        ([b"events", b"\xff\xfe", b""], "not JSON"),
        ([b"events", b"[1, 2]", b""], "JSON object"),
        (with_header(v=2), "unsupported wire version 2"),
        (with_header(kind="video"), "unknown kind 'video'"),
        (with_header(count=5), "count 5"),
        (with_header(seq="7"), "'seq'"),
        (with_header(stream=None), "'stream'"),
        (with_header(w=-3), "'w'"),
        ([b"spikes", *good_frames()[1:]], "does not match kind"),
        (
            [b"control", b'{"v":1,"kind":"control","stream":"s","seq":0,"count":0,"cmd":"explode"}', b""],
            "unknown control command 'explode'",
        ),
        (
            [b"control", b'{"v":1,"kind":"control","stream":"s","seq":0,"count":0,"cmd":"eos"}', b"xx"],
            "no payload",
        ),
        ([b"predictions", b'{"v":1,"kind":"predictions","stream":"s","seq":0,"count":0}', b""], "classes"),
        ([b"predictions", *with_header(kind="predictions", classes=10**12)[1:]], "classes"),
        (with_header(kind=[]), "unknown kind"),
        ([b"control", b'{"v":1,"kind":"control","stream":"s","seq":0,"count":0,"cmd":["eos"]}', b""], "control"),
        ([b"events", b'{"v":1,"kind":"events","count":' + b"9" * 5000 + b"}", b""], "not JSON"),
        ([b"events", b"[" * 100_000 + b"]" * 100_000, b""], "not JSON"),
        ([b"events", b" " * (MAX_HEADER_BYTES + 1), b""], "header is"),
    ],
)
def test_malformed_frames_are_named(frames, words):
    with pytest.raises(WireFormatError, match=words):
        decode(frames)


@settings(max_examples=300, deadline=None)
@given(
    topic=st.sampled_from([b"events", b"spikes", b"labels", b"predictions", b"control", b"metrics", b"x"]),
    header=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    ),
    base=st.fixed_dictionaries(
        {"v": st.just(1), "kind": st.sampled_from(["events", "predictions", "control", "labels"])},
        optional={"count": st.integers(-2, 2**70), "classes": st.integers(-2, 2**40) | st.text(max_size=3),
                  "stream": st.text(max_size=3) | st.integers(), "seq": st.integers(-3, 3), "cmd": st.text(max_size=5),
                  "body": st.integers() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)},
    ),
    payload=st.binary(max_size=64),
    merge=st.booleans(),
)  # fmt: skip
def test_whatever_a_peer_sends_decode_raises_only_wire_format_errors(topic, header, base, payload, merge):
    """A receiving node survives any message: decoding either succeeds or raises ``WireFormatError``."""
    obj = {**base, **header} if merge and isinstance(header, dict) else (base if merge else header)
    try:
        raw = json.dumps(obj).encode()
    except ValueError:  # NaN and the like are not JSON; send the repr instead
        raw = repr(obj).encode()
    try:
        msg = decode([topic, raw, payload])
    except WireFormatError:
        return
    assert msg.kind in {"events", "spikes", "labels", "predictions", "control", "metrics"}


def test_truncated_payload_names_sizes():
    topic, header, payload = good_frames()
    with pytest.raises(WireFormatError, match=r"payload is 63 bytes but count 4 x itemsize 16 = 64"):
        decode([topic, header, payload[:-1]])


def test_decoded_payload_is_a_view_not_a_copy():
    topic, header, payload = good_frames()
    buf = bytearray(payload)
    msg = decode([topic, header, buf])
    assert np.shares_memory(msg.data, np.frombuffer(buf, np.uint8))


def test_message_constructors_check_dtype():
    with pytest.raises(ValueError, match="EVENT_DTYPE"):
        events_message(np.zeros(3, SPIKE_DTYPE))
    with pytest.raises(ValueError, match="unknown control command"):
        control_message("reboot")
    assert Message("events").count == 0


def test_a_stage_output_keeps_the_creation_time_of_the_input_it_came_from():
    made_at_source = events_message(np.zeros(2, EVENT_DTYPE)).created_ns
    out = events_message(np.zeros(1, EVENT_DTYPE))  # a stage's new message, computed from that input
    assert out.created_ns >= made_at_source
    assert out.stamped("encoder", 0, made_at_source).created_ns == made_at_source
    # a source's own message (no input: origin 0) keeps its creation time; one without any gets now
    assert out.stamped("camera", 0).created_ns == out.created_ns
    bare = Message("events", np.zeros(0, EVENT_DTYPE))
    assert bare.stamped("camera", 0).created_ns > 0
