"""Message logs: the file format (round trip, refusal to overwrite, resuming, damage named by offset), the
``record`` sink and the ``playback`` source in real graphs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from graphs import conv, encoder, fc, font_digits, graph, pool, stdp, write_graph

from nodes.sources.predictions import make_predictions
from pipeline.checkpoint import load_state
from pipeline.errors import RecordingError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE, SPIKE_DTYPE
from pipeline.message import (
    FREEZE,
    RELABEL,
    Message,
    control_message,
    events_message,
    labels_message,
    predictions_message,
    spikes_message,
)
from recordings.messages import MAGIC, MessageLogWriter, TruncatedLogError, read_messages


def sample_messages() -> list[Message]:
    rng = np.random.default_rng(5)
    events = np.zeros(300, dtype=EVENT_DTYPE)
    events["t"] = np.sort(rng.integers(0, 10**6, 300))
    events["x"], events["y"], events["p"] = (
        rng.integers(0, 346, 300),
        rng.integers(0, 260, 300),
        rng.integers(0, 2, 300),
    )
    spikes = np.zeros(50, dtype=SPIKE_DTYPE)
    spikes["t"] = np.arange(50) * 7
    spikes["c"] = rng.integers(0, 1024, 50)
    labels = np.array([(10, 3, 1), (500, 7, 0)], dtype=LABEL_DTYPE)
    return [
        events_message(events, 346, 260),
        labels_message(labels),
        control_message(FREEZE, scope="classifier"),
        spikes_message(spikes, 6, 6),
        predictions_message(make_predictions([3, -1, 9], [5, 6, 7], score=[0.5, 0.0, 2.0], decision=[0, 0, 1])),
        control_message(RELABEL),
        events_message(np.zeros(0, dtype=EVENT_DTYPE), 346, 260),
    ]


def fields(data) -> dict | None:
    """A record array's values field by field (padding bytes between fields are not part of it)."""
    return None if data is None else {f: data[f].tolist() for f in data.dtype.names}


def content(messages) -> list[tuple]:
    """What a stream carries, message by message: kind, sensor size, control command and body, data."""
    return [(m.kind, m.width, m.height, m.command, m.body, fields(m.data)) for m in messages]


def write_log(path: Path, messages: list[Message]) -> list[int]:
    """Write ``messages``; returns the byte offset at which each record starts."""
    log = MessageLogWriter(path)
    starts = []
    for msg in messages:
        starts.append(log.offset)
        log.write(msg)
    log.close()
    return starts


def test_every_kind_comes_back_as_it_was_written(tmp_path: Path) -> None:
    msgs = sample_messages()
    write_log(tmp_path / "a.spklog", msgs)
    back = list(read_messages(tmp_path / "a.spklog"))
    assert content(back) == content(msgs)
    assert back[2].body == {"scope": "classifier"}
    assert back[3].data is not None
    assert back[3].data["c"].max() > 0


def test_never_overwrites_and_resumes_by_cutting_back(tmp_path: Path) -> None:
    path = tmp_path / "a.spklog"
    msgs = sample_messages()
    log = MessageLogWriter(path)
    for msg in msgs[:3]:
        log.write(msg)
    kept = log.sync()  # a checkpoint here
    for msg in msgs[3:]:
        log.write(msg)  # written after the checkpoint, then the writer dies
    log.close()
    with pytest.raises(RecordingError, match="already exists"):
        MessageLogWriter(path)
    resumed = MessageLogWriter(path, resume_at=kept)
    resumed.write(msgs[5])
    resumed.close()
    assert content(read_messages(path)) == content([*msgs[:3], msgs[5]])
    with pytest.raises(RecordingError, match=f"checkpoint says {path.stat().st_size + 1}"):
        MessageLogWriter(path, resume_at=path.stat().st_size + 1)


def test_damage_is_named_by_file_and_offset(tmp_path: Path) -> None:
    msgs = sample_messages()
    path = tmp_path / "a.spklog"
    starts = write_log(path, msgs)
    raw = path.read_bytes()

    cut = tmp_path / "cut.spklog"  # the writer died inside the fourth record
    cut.write_bytes(raw[: starts[3] + 20])
    got: list[Message] = []
    with pytest.raises(TruncatedLogError, match=f"byte {starts[3]}") as info:
        got.extend(read_messages(cut))
    assert info.value.offset == starts[3]
    assert content(got) == content(msgs[:3])

    bad_length = bytearray(raw)  # a length word of the second record flipped to something absurd
    bad_length[starts[1] + 4 : starts[1] + 8] = (1 << 31).to_bytes(4, "little")
    (tmp_path / "len.spklog").write_bytes(bad_length)
    with pytest.raises(RecordingError, match=f"len.spklog: corrupt record at byte {starts[1]}"):
        list(read_messages(tmp_path / "len.spklog"))

    bad_header = bytearray(raw)  # the JSON header of the third record damaged
    header_at = starts[2] + 16 + len(b"control")
    bad_header[header_at] = ord("#")
    (tmp_path / "hdr.spklog").write_bytes(bad_header)
    with pytest.raises(RecordingError, match=f"hdr.spklog: corrupt record at byte {starts[2]}: header is not JSON"):
        list(read_messages(tmp_path / "hdr.spklog"))

    (tmp_path / "not.spklog").write_bytes(b"%evt 2.0\n" + raw[len(MAGIC) :])
    with pytest.raises(RecordingError, match="not a spikestream message log"):
        list(read_messages(tmp_path / "not.spklog"))


def test_info_describes_a_log_and_event_tools_say_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main
    from recordings import open_recording

    path = tmp_path / "a.spklog"
    starts = write_log(path, sample_messages())
    assert main(["info", str(path), "--json"]) == 0
    log = json.loads(capsys.readouterr().out)
    assert log["messages"] == {"events": 2, "labels": 1, "control": 2, "spikes": 1, "predictions": 1}
    assert log["records"] == {"events": 300, "labels": 2, "spikes": 50, "predictions": 3}
    assert log["controls"] == {"freeze": 1, "relabel": 1}
    assert log["sizes"] == ["346x260", "6x6"]
    assert log["truncated_at"] is None
    assert log["t_first"] == 0
    assert log["t_last"] == int(sample_messages()[0].data["t"][-1])
    path.write_bytes(path.read_bytes()[: starts[4] + 3])
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "spikestream message log, 1 events, 1 labels, 1 control, 1 spikes" in text
    assert f"cut short: ends inside the message at byte {starts[4]}" in text
    with pytest.raises(RecordingError, match='message log .* play it with type = "playback"'):
        open_recording(path)


def recorded_nodes(log: Path) -> dict:
    """Font digits through a small feature extractor whose output the record sink keeps in ``log``, and
    what a second graph needs to play that log into a classifier."""
    layers = [conv(4, 8.0, a_minus=-0.01), pool(), fc(30, 30.0, th_inf=15.0, a_minus=-0.01, wta_inf=True)]
    return {
        "digits": font_digits(300, 100, seed=4),
        "encoder": encoder(34),
        "stdp": stdp((2, 34, 34), layers, seed=1),
        "record": {"type": "record", "path": str(log)},
        "playback": {"type": "playback", "path": str(log)},
        "classifier": {
            "type": "classifier",
            "readout": "supervised",
            "classes": 10,
            "inputs": 30,
            "threshold": 3.0,
            "eta": 0.02,
        },
        "evaluate": {"type": "evaluate", "classes": 10},
    }


@pytest.mark.timeout(240)
def test_a_recorded_link_played_back_gives_the_same_results(tmp_path: Path) -> None:
    """Record the feature extractor's output (spikes, labels, phase controls) while a graph runs, then
    play the log into a fresh classifier: it learns and scores exactly as the original one did."""
    log = tmp_path / "features.spklog"

    def run(name: str, links: list[str], nodes: list[str]) -> dict:
        chosen = {n: node for n, node in recorded_nodes(log).items() if n in nodes}
        doc = graph(name, links, chosen, transport="ipc", ipc_dir=str(tmp_path), log_every_s=0)
        cfg = write_graph(tmp_path / f"{name}.toml", doc)
        out = tmp_path / f"{name}.json"
        cmd = [sys.executable, "-m", "pipeline.cli", "run", str(cfg), "--state", str(tmp_path / name), "-q"]
        proc = subprocess.run([*cmd, "--results", str(out)], capture_output=True, text=True, timeout=200)
        assert proc.returncode == 0, proc.stderr
        return json.loads(out.read_text())

    live = ["digits -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate", "stdp -> record"]
    first = run("live", live, ["digits", "encoder", "stdp", "record", "classifier", "evaluate"])
    assert first["record_messages"] > 0
    assert first["test_accuracy"] > 0.2
    again = run("again", ["playback -> classifier", "classifier -> evaluate"], ["playback", "classifier", "evaluate"])
    assert again["playback_events"] == sum(m.data.shape[0] for m in read_messages(log) if m.kind == "spikes")
    assert (again["test_accuracy"], again["confusion"]) == (first["test_accuracy"], first["confusion"])
    assert again["train_accuracy"] == first["train_accuracy"]
    a, b = load_state(tmp_path / "live" / "classifier.npz"), load_state(tmp_path / "again" / "classifier.npz")
    assert np.array_equal(a["w"], b["w"])
    with pytest.raises(subprocess.CalledProcessError) as refused:  # the log is kept, never replaced
        subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "run", str(tmp_path / "live.toml"), "-q"],
            capture_output=True,
            text=True,
            timeout=200,
            check=True,
        )
    assert "already exists" in refused.value.stderr
