"""PacedFile: the file playback the replay source and the simulated camera share (laps, windows, the
sensor-size fallback, lossless pieces and clocked taking with drops)."""

from __future__ import annotations

import numpy as np

from nodes.sources.paced_file import PacedFile
from pipeline.events import make_events
from recordings import open_recording, sensor_size, write_recording


def _file(tmp_path, t, *, size=None, x=None, y=None):
    n = len(t)
    ev = make_events(t, np.arange(n) % 5 if x is None else x, np.zeros(n) if y is None else y, np.arange(n) % 2)
    path = tmp_path / "rec.npy"
    write_recording(path, ev, *(size or (None, None)))
    return path, ev


def test_a_file_without_a_sensor_size_takes_the_extent_of_its_events(tmp_path):
    path, _ = _file(tmp_path, [10, 20, 30], x=[0, 6, 2], y=[3, 0, 1])
    rec = open_recording(path)
    assert (rec.width, rec.height) == (None, None)
    assert sensor_size(rec, rec.read_all()) == (7, 4)
    assert sensor_size(rec, rec.read_all()[:0]) == (1, 1)
    f = PacedFile.read(path, gap_us=1)
    assert (f.width, f.height, f.size_from_events) == (7, 4, True)


def test_a_stated_sensor_size_is_kept(tmp_path):
    ev = make_events([1, 2], [0, 1], [0, 1], [1, 0])
    path = tmp_path / "rec.aedat3"
    write_recording(path, ev, 34, 30)
    f = PacedFile.read(path, gap_us=1)
    assert (f.width, f.height, f.size_from_events) == (34, 30, False)


def test_laps_follow_each_other_one_gap_apart(tmp_path):
    path, ev = _file(tmp_path, [100, 150, 400])
    f = PacedFile.read(path, gap_us=1000)
    assert f.period == 300 + 1000
    laps = [np.concatenate(list(f.pieces(lap, 0, 2))) for lap in range(3)]
    assert [lap["t"].tolist() for lap in laps] == [[100, 150, 400], [1400, 1450, 1700], [2700, 2750, 3000]]
    assert all(np.array_equal(lap["x"], ev["x"]) and np.array_equal(lap["p"], ev["p"]) for lap in laps)
    assert [p.shape[0] for p in f.pieces(0, 0, 2)] == [2, 1]
    assert f.events["t"].tolist() == [100, 150, 400]  # shifting copies, the file stays as read


def test_paced_pieces_stay_within_one_time_slice(tmp_path):
    path, _ = _file(tmp_path, [0, 5, 999, 1000, 1001, 2500, 2501, 2502])
    f = PacedFile.read(path, gap_us=1)
    assert [p["t"].tolist() for p in f.pieces(0, 1000, 2)] == [[0, 5], [999], [1000, 1001], [2500, 2501], [2502]]


def test_a_window_keeps_part_of_the_file_and_its_span_sets_the_period(tmp_path):
    path, _ = _file(tmp_path, list(range(1000, 2000, 100)))
    f = PacedFile.read(path, gap_us=1, start_us=200, stop_us=500)
    assert f.events["t"].tolist() == [1200, 1300, 1400]
    assert f.period == 201
    assert PacedFile.read(path, gap_us=1, start_us=850).events["t"].tolist() == [1900]


def test_take_gives_what_is_due_and_drops_what_is_too_old(tmp_path):
    path, _ = _file(tmp_path, [0, 10, 20, 30, 40])
    f = PacedFile.read(path, gap_us=10)
    batches, dropped, cursor, lap, oldest = f.take(0, 0, 25, max_lag_us=100, loop=False)
    assert [b["t"].tolist() for b in batches] == [[0, 10, 20]]
    assert (dropped, cursor, lap, oldest) == (0, 3, 0, 0)
    # late: at stream time 45 with a 12 µs lag budget, the event due at 30 is dropped
    batches, dropped, cursor, lap, oldest = f.take(cursor, lap, 45, max_lag_us=12, loop=False)
    assert [b["t"].tolist() for b in batches] == [[40]]
    assert (dropped, cursor, lap, oldest) == (1, 5, 0, 40)
    assert f.next_due(cursor, lap, 46) == 46  # played out
    assert f.next_due(2, 1, 46) == 20 + 50


def test_take_wraps_into_the_next_lap_when_looping(tmp_path):
    path, _ = _file(tmp_path, [0, 10, 20, 30, 40])
    f = PacedFile.read(path, gap_us=10)  # period 50
    batches, dropped, cursor, lap, _ = f.take(3, 0, 65, max_lag_us=1000, loop=True)
    assert [b["t"].tolist() for b in batches] == [[30, 40], [50, 60]]
    assert (dropped, cursor, lap) == (0, 2, 1)
    assert f.next_due(cursor, lap, 66) == 70


def test_timestamps_that_step_back_are_due_with_the_latest_before_them(tmp_path):
    path, _ = _file(tmp_path, [0, 30, 20, 40])
    f = PacedFile.read(path, gap_us=5)
    assert f.due.tolist() == [0, 30, 30, 40]
    assert f.period == 45
    batches, *_ = f.take(0, 0, 30, max_lag_us=100, loop=False)
    assert [b["t"].tolist() for b in batches] == [[0, 30, 20]]
