"""``spikestream render``: frames binned as the reference bins them, videos with the frames and colours
expected, predictions drawn as bars, damaged input refused in one line; the saved network run by
``--state`` (the graph cut down around it, and end to end, slow)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageSequence

import recordings as R
from nodes.sources.predictions import make_predictions
from pipeline.cli import main
from pipeline.events import make_events
from pipeline.message import events_message, predictions_message
from recordings.messages import MessageLogWriter
from recordings.video import overlay
from recordings.video.frames import Timing, frames
from recordings.video.kernel import paint
from recordings.video.network import SINK, SOURCE, reduced_graph, resume_time
from recordings.video.overlay import Layout
from recordings.video.render import auto_scale
from tests.reference.render_reference import reference_frames, reference_paint

W, H = 20, 16
ON_AT, OFF_AT = (3, 4), (12, 9)


def _events(duration_us: int = 1_000_000) -> np.ndarray:
    """An ON event at ``ON_AT`` and an OFF event at ``OFF_AT`` every ms, for ``duration_us``."""
    t = np.repeat(np.arange(0, duration_us, 1000), 2) + 5_000
    x = np.tile([ON_AT[0], OFF_AT[0]], t.size // 2)
    y = np.tile([ON_AT[1], OFF_AT[1]], t.size // 2)
    p = np.tile([1, 0], t.size // 2)
    return make_events(t, x, y, p)


def _fixture(tmp_path: Path) -> Path:
    path = tmp_path / "two-pixels.aedat4"
    R.write_recording(path, _events(), W, H)
    return path


def _mp4_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def _gif_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(path) as im:
        pairs = [
            (np.asarray(f.convert("RGB"))[:, :, ::-1], int(f.info["duration"])) for f in ImageSequence.Iterator(im)
        ]
    return [f for f, _ in pairs], [d for _, d in pairs]


def _close(pixel: np.ndarray, colour: tuple[int, ...] | np.ndarray, tol: int = 40) -> bool:
    return bool(np.abs(pixel.astype(int) - np.asarray(colour, dtype=int)).max() <= tol)


@pytest.mark.parametrize("window", [0, 700, 25_000])
@pytest.mark.parametrize("step", [1e6 / 30, 1000 / 3, 4321.0])
def test_frames_are_binned_as_the_reference_bins_them_whatever_the_batches(step, window):
    rng = np.random.default_rng(int(step) + window)
    n = 5000
    t = np.sort(rng.integers(0, 400_000, n))
    ev = make_events(t, rng.integers(0, 12, n), rng.integers(0, 9, n), rng.integers(0, 2, n))
    t0 = int(rng.integers(-2000, 3000))
    ref_counts, ref_totals = reference_frames(ev, 10, 9, t0, step, window, 40)  # x up to 11: some off-sensor
    timing = Timing(t0=t0, step=step, window=window, n_frames=40)
    for batch in (7, 97, n):
        seen = []
        for f in frames((ev[i : i + batch] for i in range(0, n, batch)), 10, 9, timing):
            seen.append(f.index)  # (a frame's counts are valid until the next frame is taken)
            assert np.array_equal(f.counts, ref_counts[f.index]), (batch, f.index)
            assert f.events == ref_totals[f.index]
        assert seen == list(range(40))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 400),
    seed=st.integers(0, 2**31),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    window=st.sampled_from([0, 1, 999, 7000]),
)
def test_frames_do_not_depend_on_how_the_events_are_batched(n, seed, cuts, window):
    rng = np.random.default_rng(seed)
    ev = make_events(
        np.sort(rng.integers(0, 60_000, n)), rng.integers(0, 6, n), rng.integers(0, 5, n), rng.integers(0, 2, n)
    )
    timing = Timing(t0=0, step=1e6 / 300, window=window, n_frames=20)
    edges = [0, *sorted(c for c in cuts if c <= n), n]
    ref_counts, ref_totals = reference_frames(ev, 6, 5, 0, timing.step, window, 20)
    got = 0
    for f in frames((ev[a:b] for a, b in itertools.pairwise(edges)), 6, 5, timing):
        assert np.array_equal(f.counts, ref_counts[f.index])
        assert f.events == ref_totals[f.index]
        got += 1
    assert got == 20


def test_painting_colours_each_pixel_block_by_its_stronger_polarity_as_the_reference_does():
    rng = np.random.default_rng(5)
    counts = (rng.integers(0, 3, (9, 11, 2)) * rng.integers(0, 2, (9, 11, 1))).astype(np.uint16)
    canvas = rng.integers(0, 255, (60, 70, 3)).astype(np.uint8)
    for scale, oy, ox in [(1, 0, 0), (3, 2, 5), (5, 7, 13)]:
        got = canvas.copy()
        paint(counts, scale, got, oy, ox, overlay.ON, overlay.OFF)
        assert np.array_equal(got, reference_paint(counts, scale, canvas, oy, ox, overlay.ON, overlay.OFF))
    assert counts[..., 1].sum()  # both polarities and dark pixels took part
    assert counts[..., 0].sum()
    assert (counts.sum(axis=2) == 0).any()


def test_without_a_window_every_event_on_the_sensor_is_in_exactly_one_frame():
    ev = _events(300_000)
    got = list(frames([ev], W, H, Timing(t0=int(ev["t"][0]), step=1e6 / 30, window=0)))
    assert sum(f.events for f in got) == ev.size
    assert got[-1].t_end > int(ev["t"][-1]) >= got[-2].t_end


def test_an_mp4_has_duration_times_fps_over_speed_frames_and_on_off_pixels_where_the_events_were(tmp_path, capsys):
    out = tmp_path / "two.mp4"
    rc = main(["render", str(_fixture(tmp_path)), str(out), "--speed", "0.5", "--fps", "10", "--duration", "0.8"])
    assert rc == 0
    assert "16 frames" in capsys.readouterr().out
    got = _mp4_frames(out)
    assert len(got) == round(0.8 * 10 / 0.5)
    layout = Layout(sensor_width=W, sensor_height=H, scale=auto_scale(W))
    assert got[0].shape == (layout.height, layout.width, 3)
    for frame in got[1:]:
        assert _close(frame[layout.pixel(*ON_AT)], overlay.ON)
        assert _close(frame[layout.pixel(*OFF_AT)], overlay.OFF)
        assert _close(frame[layout.pixel(10, 2)], overlay.SENSOR)


def test_a_gif_keeps_every_frame_its_colours_and_the_clock(tmp_path):
    out = tmp_path / "two.gif"
    assert main(["render", str(_fixture(tmp_path)), str(out), "--fps", "30", "--duration", "0.5", "--scale", "6"]) == 0
    got, delays = _gif_frames(out)
    assert len(got) == 15
    assert sum(delays) == 500  # 30, 30, 40 ms ... in the hundredths of a second GIFs count in
    layout = Layout(sensor_width=W, sensor_height=H, scale=6)
    for frame in got:
        assert _close(frame[layout.pixel(*ON_AT)], overlay.ON, tol=12)
        assert _close(frame[layout.pixel(*OFF_AT)], overlay.OFF, tol=12)


def test_a_longer_window_leaves_a_trail_and_a_start_skips_ahead(tmp_path):
    ev = make_events([100_000, 260_000, 400_000], [2, 15, 8], [2, 10, 8], [1, 1, 1])
    src = tmp_path / "two-events.npy"
    R.write_recording(src, ev, None, None)
    out = tmp_path / "trail.mp4"
    args = ["render", str(src), str(out), "--fps", "10", "--window-ms", "250", "--start", "0.05", "--scale", "20"]
    assert main(args) == 0
    got = _mp4_frames(out)
    assert len(got) == 3  # from 0.15 s (0.05 s after the first event) to the frame holding the last: 3 of 0.1 s
    layout = Layout(sensor_width=16, sensor_height=11, scale=20)
    lit = [_close(f[layout.pixel(2, 2)], overlay.ON) for f in got]
    assert lit == [False, False, False]  # the first event is before the start
    lit = [_close(f[layout.pixel(15, 10)], overlay.ON) for f in got]
    assert lit == [False, True, True]  # at 0.26 s, shown by the frames ending at 0.35 and 0.45 s
    lit = [_close(f[layout.pixel(8, 8)], overlay.ON) for f in got]
    assert lit == [False, False, True]


def _log_with_predictions(tmp_path: Path) -> Path:
    """A message log of the events of ``_events`` and predictions: class 2 before 0.5 s, class 7 after."""
    ev = _events()
    log = MessageLogWriter(tmp_path / "run.spklog")
    t = np.arange(10_000, 1_000_000, 20_000)
    labels = np.where(t < 500_000, 2, 7)
    preds = make_predictions(labels, t, score=np.where(t < 500_000, 0.5, 1.0))
    preds["scores"][:, 4] = 0.25
    for i in range(0, ev.size, 200):
        log.write(events_message(ev[i : i + 200], W, H))
    log.write(predictions_message(preds))
    log.close()
    return log.path


def _bar_level(frame: np.ndarray, layout: Layout, c: int) -> float:
    """How much of class ``c``'s bar is filled (its column, read from the bottom)."""
    left, top, right, bottom = layout.bar(c)
    column = frame[top : bottom + 1, (left + right) // 2].astype(int)
    filled = np.abs(column - np.asarray(overlay.BAR_PREDICTED)).max(axis=1) <= 40
    filled |= np.abs(column - np.asarray(overlay.BAR)).max(axis=1) <= 40
    return float(filled.mean())


@pytest.mark.parametrize("how", ["log", "jsonl"])
def test_predictions_are_drawn_as_bars_that_follow_the_scores(tmp_path, how):
    log = _log_with_predictions(tmp_path)
    if how == "log":  # the log holds the events and the predictions
        args = ["render", str(log), str(tmp_path / "p.mp4")]
    else:  # events from a file, predictions from a jsonl sink's lines
        lines = tmp_path / "predictions.jsonl"
        preds = make_predictions(np.where(np.arange(50) < 25, 2, 7), np.arange(10_000, 1_000_000, 20_000))
        preds["scores"][:25, 2] = 0.5
        preds["scores"][:, 4] = 0.25
        rows = [
            {"seq": i, "t": int(r["t"]), "label": int(r["label"]), "truth": -1, "decision": False, "train": False,
             "scores": r["scores"].tolist()}
            for i, r in enumerate(preds)
        ]  # fmt: skip
        lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
        args = ["render", str(_fixture(tmp_path)), str(tmp_path / "p.mp4"), "--predictions", str(lines)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"graph": "g", "test_accuracy": 0.5}))
    assert main([*args, "--fps", "10", "--results", str(results)]) == 0
    got = _mp4_frames(tmp_path / "p.mp4")
    assert len(got) == 10
    layout = Layout(sensor_width=W, sensor_height=H, scale=auto_scale(W), classes=10, caption=True)
    early, late = got[2], got[8]  # at 0.3 s: class 2 scores 0.5; at 0.9 s: class 7 scores 1.0
    assert _bar_level(early, layout, 2) == pytest.approx(0.5, abs=0.1)
    assert _bar_level(early, layout, 7) == pytest.approx(0.0, abs=0.05)
    assert _bar_level(late, layout, 2) == pytest.approx(0.0, abs=0.05)
    assert _bar_level(late, layout, 7) == pytest.approx(1.0, abs=0.05)
    assert _bar_level(late, layout, 4) == pytest.approx(0.25, abs=0.1)
    left, _top, right, bottom = layout.bar(7)
    assert _close(late[bottom - 3, (left + right) // 2], overlay.BAR_PREDICTED)


def test_a_truncated_recording_is_one_line_naming_the_file_and_byte_and_leaves_no_video(tmp_path, capsys):
    good = tmp_path / "sample.bin"
    R.write_recording(good, _events(), None, None)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(good.read_bytes()[:-2])
    out = tmp_path / "cut.mp4"
    assert main(["render", str(cut), str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert re.match(rf"spikestream: error: {re.escape(str(cut))} at byte \d+: truncated", err), err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "out", "says"),
    [
        ("notes.txt", b"hello", "v.mp4", "unknown event file format"),
        ("two.npy", None, "v.avi", "end the name in .mp4 or .gif"),
        ("two.npy", None, "none/v.mp4", "does not exist"),
        ("two.npy", "--start 5", "v.mp4", "no events from --start 5 s on"),
    ],
)
def test_unknown_formats_unwritable_outputs_and_empty_spans_are_one_line_errors(
    tmp_path, capsys, name, content, out, says
):
    src = tmp_path / name
    options = []
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        R.write_recording(src, _events(10_000), None, None)
        options = content.split() if content else []
    assert main(["render", str(src), str(tmp_path / out), *options]) == 1
    assert not (tmp_path / out).exists()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert says in err, err


def test_the_graph_is_cut_down_to_source_network_and_classifier_with_a_recording_sink(tmp_path):
    raw = {
        "name": "g",
        "links": ["cam -> enc", "enc -> stdp", "stdp -> clf", "clf -> eval", "clf -> mqtt", "stdp -> rec"],
        "nodes": {
            "cam": {"type": "camera"},
            "enc": {"type": "encoder"},
            "stdp": {"type": "stdp"},
            "clf": {"type": "classifier", "running": False},
            "eval": {"type": "evaluate"},
            "mqtt": {"type": "mqtt"},
            "rec": {"type": "record", "path": "x"},
        },
    }
    doc = reduced_graph(raw, tmp_path / "e.log", tmp_path / "p.log", "g.toml")
    assert set(doc["nodes"]) == {SOURCE, "enc", "stdp", "clf", SINK}
    assert sorted(doc["links"]) == sorted([f"{SOURCE} -> enc", "enc -> stdp", "stdp -> clf", f"clf -> {SINK}"])
    assert doc["nodes"]["clf"]["running"] is True
    assert doc["nodes"][SOURCE] == {"type": "playback", "path": str(tmp_path / "e.log")}
    assert doc["nodes"][SINK]["kinds"] == ["predictions"]


def test_the_resume_time_is_after_every_time_a_checkpoint_holds(tmp_path):
    from pipeline.checkpoint import save_state

    save_state(tmp_path / "a.npz", {"last": np.array([5, 123_456]), "counters": np.array([10**9]), "w": np.ones(3)})
    save_state(tmp_path / "b.npz", {"ref": np.array([-(2**62), 99]), "hash": np.array([2**62])})
    assert resume_time([tmp_path / "a.npz", tmp_path / "b.npz"]) == 123_457


@pytest.mark.slow
def test_a_saved_network_predicts_over_a_recording_and_its_state_folder_is_left_alone(tmp_path):
    """Font digits taught to a small network, then ``render --state`` over an N-MNIST-sized recording."""
    from graphs import conv, encoder, fc, font_digits, graph, pool, stdp, write_graph

    phases = [{"split": "train", "samples": 40}]
    nodes = {
        "digits": font_digits(40, 0, seed=3, phases=phases),
        "encoder": encoder(34),
        "stdp": stdp((2, 34, 34), [conv(4, 8.0, a_minus=-0.01), pool(), fc(20, 20.0, wta_inf=True)], seed=2),
        "classifier": {"type": "classifier", "readout": "supervised", "classes": 10, "inputs": 20},
        "evaluate": {"type": "evaluate", "classes": 10},
    }
    links = ["digits -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate"]
    cfg = write_graph(tmp_path / "g.toml", graph("tiny", links, nodes, log_every_s=0))
    state = tmp_path / "state"
    assert main(["run", str(cfg), "--state", str(state), "-q"]) == 0
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 300_000, 4000))
    src = tmp_path / "sample.bin"
    R.write_recording(
        src, make_events(t, rng.integers(8, 26, 4000), rng.integers(8, 26, 4000), rng.integers(0, 2, 4000)), None, None
    )
    out = tmp_path / "s.mp4"
    assert main(["render", str(src), str(out), "--state", str(state), "--config", str(cfg), "--speed", "0.1"]) == 0
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before
    assert len(_mp4_frames(out)) == 90
