"""Replay sources: a dataset folder as one continuous labelled stream (speed 0 and real time), files
paced by their own timestamps (lag measured), looping and windows."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import numpy as np
import pytest

from nodes.sources.pacing import time_slices
from nodes.sources.replay import shift_samples
from pipeline.config import parse_graph
from pipeline.errors import ConfigError, SpikestreamError
from pipeline.events import EVENT_DTYPE
from pipeline.message import EVENTS, LABELS, Message
from pipeline.node import Node, NoParams
from pipeline.runner import run_graph
from recordings import write_recording


class StreamRecorder(Node):
    """Test sink: keeps every event and label, and the wall-clock lag of each message behind its stream
    time (first message = origin)."""

    Config = NoParams
    last: StreamRecorder | None = None

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.events: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.lags: list[float] = []
        self.max_t_before_labels: list[tuple[int, int]] = []  # (latest event t so far, earliest label t)
        self._max_t = -1
        self._origin: tuple[float, int] | None = None
        StreamRecorder.last = self

    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == EVENTS:
            now = time.perf_counter()
            t_last = int(msg.data["t"][-1])
            if self._origin is None:
                self._origin = (now, int(msg.data["t"][0]))
            wall0, t0 = self._origin
            self.lags.append((now - wall0) - (t_last - t0) / 1e6)
            self.events.append(msg.data.copy())
            self._max_t = max(self._max_t, t_last)
        elif msg.kind == LABELS:
            self.labels.append(msg.data.copy())
            self.max_t_before_labels.append((self._max_t, int(msg.data["t"].min())))
        return ()


def fake_nmnist(root, per_label: int = 3) -> None:
    rng = np.random.default_rng(0)
    for split in ("Train", "Test"):
        for label in range(3):
            for k in range(per_label):
                n = int(rng.integers(50, 120))
                ev = np.zeros(n, EVENT_DTYPE)
                ev["t"] = np.sort(rng.integers(1000, 20_000, n))  # 1 ms of leading silence at least
                ev["x"], ev["y"], ev["p"] = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
                folder = root / split / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                write_recording(folder / f"{k + 1:05d}.bin", ev, 34, 34)


def graph(path, **source) -> dict:
    return {
        "name": "replay-test",
        "transport": "inproc",
        "log_every_s": 0,
        "links": ["source -> sink"],
        "nodes": {
            "source": {"type": "replay", "path": str(path), **source},
            "sink": {"type": "test_replay:StreamRecorder"},
        },
    }


@pytest.mark.parametrize("speed", [0.0, 1.0])
def test_dataset_folder_is_one_continuous_labelled_stream(tmp_path, speed):
    fake_nmnist(tmp_path)
    phases = [{"split": "Train", "passes": 2}, {"split": "Test", "features": False, "classifier": False}]
    results = run_graph(parse_graph(graph(tmp_path, speed=speed, phases=phases, seed=3), "t"))
    sink = StreamRecorder.last
    assert sink is not None
    assert results["errors"] == {}
    events = np.concatenate(sink.events)
    labels = np.concatenate(sink.labels)
    assert results["samples_replayed"] == 2 * 9 + 9 == len(labels)
    assert results["events_replayed"] == len(events) == results["events_in"]
    assert np.all(np.diff(events["t"]) >= 0)  # time keeps increasing across samples and phases
    assert list(labels["train"]) == [1] * 18 + [0] * 9
    # every label sits at its sample's first event, and samples do not overlap
    starts = np.searchsorted(events["t"], labels["t"])
    assert np.array_equal(events["t"][starts], labels["t"])
    # the two passes use different seeded orders
    assert not np.array_equal(labels["label"][:9], labels["label"][9:18])
    if speed:
        span = (events["t"][-1] - events["t"][0]) / 1e6
        assert results["wall_s"] >= 0.9 * span


def test_split_ranges_hold_out_disjoint_samples(tmp_path):
    # stored order of the fake Train folder (by file index, then label): labels 0,1,2,0,1,2,0,1,2; "Train[:4]"
    # draws (in seeded order)
    # from the first four, "Train[4:]" from the other five: a validation set held out of the training data
    fake_nmnist(tmp_path)
    phases = [{"split": "Train[:4]"}, {"split": "Train[4:]", "features": False, "classifier": False}]
    results = run_graph(parse_graph(graph(tmp_path, phases=phases, seed=5), "t"))
    sink = StreamRecorder.last
    assert sink is not None
    assert results["errors"] == {}
    labels = np.concatenate(sink.labels)
    assert sorted(labels["label"][:4]) == [0, 0, 1, 2]
    assert list(labels["train"][:4]) == [1] * 4
    assert sorted(labels["label"][4:]) == [0, 1, 1, 2, 2]
    assert list(labels["train"][4:]) == [0] * 5
    assert [p["split"] for p in results["nodes"]["source"]["results"]["phases"]] == ["Train[:4]", "Train[4:]"]


@pytest.mark.parametrize(
    ("split", "why"), [("Train[3:3]", "an empty range"), ("Train[a:]", "a name or name[start:stop]")]
)
def test_bad_split_ranges_are_config_errors(tmp_path, split, why):
    fake_nmnist(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(why)):
        run_graph(parse_graph(graph(tmp_path, phases=[{"split": split}]), "t"))


def test_split_range_beyond_the_data_is_named(tmp_path):
    fake_nmnist(tmp_path)
    why = "nodes.source: split 'Train[5:20]' is out of range: 'Train' has 9 samples"
    with pytest.raises(SpikestreamError, match=f"^{re.escape(why)}$"):  # the graph is refused at its start
        run_graph(parse_graph(graph(tmp_path, phases=[{"split": "Train[5:20]"}]), "t"))


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ({"type": "replay", "path": "nope"}, "path"),
        ({"type": "replay", "path": "nope.aedat4"}, "path"),
        ({"type": "mnist", "root": "nope"}, "root"),
        ({"type": "saccades", "digits": "mnist", "root": "nope"}, "root"),
        ({"type": "playback", "path": "nope.spklog"}, "path"),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else v,
)
def test_missing_data_is_found_before_any_node_starts(tmp_path, monkeypatch, source, key):
    """A source whose data is not there is refused when the graph is checked, in one line naming the key
    and where it looked, before any node is created (a node that loads its kernels takes seconds)."""

    def started(*_args, **_kw):
        msg = "the graph started"
        raise AssertionError(msg)

    monkeypatch.setattr("pipeline.runner.run_inproc", started)
    monkeypatch.setattr("pipeline.runner.run_processes", started)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIKESTREAM_DATA", str(tmp_path / "data"))
    doc = graph("unused") | {"nodes": {"source": source, "sink": {"type": "null"}}}
    where = re.escape(f"looked for {source[key]} in the current folder, then in $SPIKESTREAM_DATA = ")
    with pytest.raises(ConfigError, match=rf"^t: nodes\.source\.{key}: not found \({where}"):
        run_graph(parse_graph(doc, "t"))


def test_a_kept_position_is_refused_by_a_source_with_another_configuration(tmp_path):
    fake_nmnist(tmp_path / "data")
    state = str(tmp_path / "state")
    first = run_graph(parse_graph(graph(tmp_path / "data", seed=1, speed=100.0), "t"), state_dir=state)
    assert first["errors"] == {}
    assert first["samples_replayed"] == 18
    with pytest.raises(SpikestreamError, match="another configuration"):  # another seed: another sample order
        run_graph(parse_graph(graph(tmp_path / "data", seed=2, speed=100.0), "t"), state_dir=state)
    # the refused checkpoint is kept as it was (not overwritten by the failed run's fresh state)
    # another pace is the same stream: resumed at its end, nothing left to replay, no error
    again = run_graph(parse_graph(graph(tmp_path / "data", seed=1, speed=200.0), "t"), state_dir=state)
    assert again["errors"] == {}
    assert again["events_in"] == 0


def test_file_replay_in_real_time_has_small_lag(tmp_path):
    n = 20_000
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = 10**9 + np.sort(np.random.default_rng(1).integers(0, 600_000, n))  # 0.6 s
    ev["x"] = np.arange(n) % 34
    path = tmp_path / "rec.npy"
    write_recording(path, ev, None, None)
    results = run_graph(parse_graph(graph(path, speed=1.0), "t"))
    sink = StreamRecorder.last
    got = np.concatenate(sink.events)
    assert len(got) == n
    assert np.array_equal(got["t"], ev["t"])
    lags = np.array(sink.lags)
    assert results["wall_s"] >= 0.55
    assert np.percentile(lags, 50) < 0.003, (np.percentile(lags, [50, 99]), lags.max())
    assert lags.max() < 0.05, (np.percentile(lags, [50, 99]), lags.max())


def test_file_loop_and_window(tmp_path):
    ev = np.zeros(100, EVENT_DTYPE)
    ev["t"] = np.arange(100) * 10
    path = tmp_path / "rec.npy"
    write_recording(path, ev, None, None)
    run_graph(parse_graph(graph(path, loop=3, start_us=200, stop_us=700), "t"))
    got = np.concatenate(StreamRecorder.last.events)["t"]
    one = np.arange(20, 70) * 10
    period = one[-1] - one[0] + 1
    assert np.array_equal(got, np.concatenate([one, one + period, one + 2 * period]))


@pytest.mark.needs_data
def test_real_nmnist_test_split_replays(data_dir):
    phases = [{"split": "Test", "samples": 10, "features": False, "classifier": False}]
    results = run_graph(parse_graph(graph(data_dir / "nmnist", phases=phases), "t"))
    assert results["samples_replayed"] == 10
    assert results["events_replayed"] > 10 * 1000


def test_shift_samples_keeps_leading_silence_and_no_gaps():
    a = np.zeros(2, EVENT_DTYPE)
    a["t"] = [5, 9]
    b = np.zeros(2, EVENT_DTYPE)
    b["t"] = [3, 4]
    events, recs, nxt = shift_samples([a, b], [7, 8], 100, True)
    assert list(events["t"]) == [105, 109, 113, 114]
    assert nxt == 115
    assert recs.tolist() == [(105, 7, 1), (113, 8, 1)]


def test_time_slices_cover_everything_in_order():
    ev = np.zeros(1000, EVENT_DTYPE)
    ev["t"] = np.sort(np.random.default_rng(2).integers(0, 50_000, 1000))
    pieces = list(time_slices(ev, 1000, 7))
    assert np.array_equal(np.concatenate(pieces)["t"], ev["t"])
    assert all(len(p) <= 7 and p["t"][-1] // 1000 == p["t"][0] // 1000 for p in pieces)


def test_saccade_labels_are_never_late():
    """A label must reach the classifier before any event at or after its time (a late label would be
    applied at the wrong place of the stream)."""
    g = {
        "name": "saccade-labels",
        "transport": "inproc",
        "log_every_s": 0,
        "links": ["source -> sink"],
        "nodes": {
            "source": {
                "type": "saccades",
                "font_train": 40,
                "font_test": 10,
                "phases": [{"split": "train", "samples": 40}],
            },
            "sink": {"type": "test_replay:StreamRecorder"},
        },
    }
    run_graph(parse_graph(g, "t"))
    sink = StreamRecorder.last
    assert len(sink.max_t_before_labels) == 3  # chunks of 16 samples
    assert all(latest < first_label for latest, first_label in sink.max_t_before_labels)
    events = np.concatenate(sink.events)
    labels = np.concatenate(sink.labels)
    # every sample's events start at or after its label
    assert np.all(np.searchsorted(events["t"], labels["t"]) < len(events))
