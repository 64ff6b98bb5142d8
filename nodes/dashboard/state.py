"""What the dashboard shows, kept up to date from the messages its taps bring.

The node's ``update`` runs in the graph's event loop for every message and only does cheap work: it keeps
references to the newest event batches, counts spikes per map, folds decisions into accuracies and a
confusion matrix, and stores the counters that nodes publish. ``view`` runs in the web server's thread, at
the page's frame rate, and does the rest (the event frames). A lock guards both; neither holds it long.

Rates come from the nodes' own counters (``pipeline.metrics``), not from what the taps delivered: taps
drop on purpose, counters do not.
"""

from __future__ import annotations

import base64
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.message import EVENTS, LABELS, METRICS, PREDICTIONS, SPIKES, Message

from .views import NodeViews

#: Largest side of an event frame sent to the page; bigger sensors are shown binned by a whole factor.
MAX_FRAME_SIDE = 346
#: Most events drawn in one frame (the newest); a frame of a busy sensor is dense long before that.
MAX_FRAME_EVENTS = 200_000
#: Seconds of rate history kept per node (the page draws the last minutes).
RATE_HISTORY_S = 300
#: Decisions listed as "recent".
RECENT_DECISIONS = 12
#: Most points of an accuracy curve sent to the page (the newest always among them).
CURVE_POINTS = 400
#: Input older than this (latency p50, ms) marks a node as behind.
BEHIND_MS = 1000.0
#: What the page shows of a tapped node that has not reported yet.
_NOT_REPORTED: dict[str, Any] = {
    "type": None,
    "counters": {},
    "final": False,
    "wall_ns": None,
    "learning": None,
    "behind": False,
    "fell_behind_at": None,
}


@dataclass
class EventStream:
    """The newest event batches of one node's output, enough to draw its last ``window_us``."""

    width: int
    height: int
    batches: deque[np.ndarray] = field(default_factory=deque)
    newest_t: int = 0
    created_ns: int = 0  #: when the newest batch was made (its message's ``created_ns``): frame latency


@dataclass
class SpikeStream:
    """Spikes per map (channel) of one node's output over the last second of wall time."""

    counts: deque[tuple[float, np.ndarray]] = field(default_factory=deque)
    maps: int = 0


@dataclass
class Decisions:
    """Decisions that carry a truth: accuracies, curves and confusion matrices (online = training
    segments, decided before the classifier learns from them; test = evaluation segments)."""

    classes: int
    online: list[int] = field(default_factory=lambda: [0, 0])  # correct, total
    test: list[int] = field(default_factory=lambda: [0, 0])
    online_curve: list[tuple[int, float]] = field(default_factory=list)
    test_curve: list[tuple[int, float]] = field(default_factory=list)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_DECISIONS))
    online_confusion: np.ndarray = field(init=False)
    test_confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.online_confusion = np.zeros((self.classes, self.classes), np.int64)
        self.test_confusion = np.zeros((self.classes, self.classes), np.int64)

    def add(self, records: np.ndarray) -> None:
        """Fold decision records (``decision == 1``) into the figures."""
        for r in records:
            label, truth, train = int(r["label"]), int(r["truth"]), bool(r["train"])
            self.recent.appendleft({"t": int(r["t"]), "label": label, "truth": truth, "train": train})
            if not 0 <= truth < self.classes:
                continue
            tally, curve, confusion = (
                (self.online, self.online_curve, self.online_confusion)
                if train
                else (self.test, self.test_curve, self.test_confusion)
            )
            tally[0] += label == truth
            tally[1] += 1
            if 0 <= label < self.classes:
                confusion[truth, label] += 1
            curve.append((tally[1], tally[0] / tally[1]))
            if len(curve) > 2000:  # keep the curve's shape, not every point
                del curve[::2]


class DashboardState:
    """Everything the page shows (see the module docstring). ``classes`` sizes the decision figures;
    ``window_ms`` is how much stream time an event frame accumulates."""

    def __init__(self, classes: int, window_ms: float, class_names: tuple[str, ...] = ()) -> None:
        self.classes = classes
        self.class_names = class_names
        self.window_us = int(window_ms * 1000)
        self._lock = threading.Lock()
        self.events: dict[str, EventStream] = {}
        self.spikes: dict[str, SpikeStream] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.rates: dict[str, deque[tuple[float, float]]] = {}
        self.views = NodeViews()  #: what nodes show of their state: learning, kernels, spikes per map
        self.decisions = Decisions(classes)
        self.prediction: dict[str, Any] | None = None
        self.predictions_seen = 0
        self.predictions_from = ""  #: the node whose predictions are shown
        self.stream_t = 0  #: newest timestamp seen in the stream (µs): the time base of taught labels
        self.tap_lost = 0  #: messages the taps lost before they reached the dashboard (sequence holes)
        self._last_seq: dict[str, int] = {}
        self.commands: deque[dict[str, Any]] = deque(maxlen=10)
        self.ended = False  #: the graph has ended: the page shows its last state
        self.frames_sent = 0
        self.frames_dropped = 0  #: frames a slow browser did not take in time (skipped, never queued)
        self.clients = 0
        self._frames: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # the last frame per stream

    # -- updates from the graph (its event loop) ---------------------------------------------------------
    def update(self, msg: Message, now: float | None = None) -> None:
        """Take one message from a tap."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._count_losses(msg)
            if msg.kind == METRICS:
                self._metrics(msg.body or {}, now)
            elif msg.data is None or msg.count == 0:
                return
            elif msg.kind == EVENTS:
                self._events(msg)
            elif msg.kind == SPIKES:
                self._spikes(msg, now)
            elif msg.kind == PREDICTIONS:
                self._predictions(msg.stream, msg.data)
            elif msg.kind == LABELS:
                self.stream_t = max(self.stream_t, int(msg.data["t"][-1]))

    def _count_losses(self, msg: Message) -> None:
        if msg.seq < 0:
            return
        last = self._last_seq.get(msg.stream)
        if last is not None and msg.seq > last + 1:
            self.tap_lost += msg.seq - last - 1
        self._last_seq[msg.stream] = msg.seq

    def expect(self, names: tuple[str, ...]) -> None:
        """List ``names`` (the nodes it taps) before any of them reports: a busy tap may lose a node's
        first counters, and a page should not look as if that stage were missing."""
        with self._lock:
            for name in names:
                self.nodes.setdefault(name, dict(_NOT_REPORTED))

    def _metrics(self, body: dict[str, Any], now: float) -> None:
        name = str(body.get("node", "?"))
        counters = body.get("counters") or {}
        before = self.nodes.get(name, {})
        view = body.get("view") or {}
        lat = counters.get("latency") or {}
        behind = bool(counters.get("shed")) or float(lat.get("p50_ms") or 0) > BEHIND_MS
        wall_ns = int(body.get("wall_ns") or time.time_ns())
        self.nodes[name] = {
            "type": body.get("type"),
            "counters": counters,
            "final": bool(body.get("final")),
            "wall_ns": wall_ns,  #: when the node read these counters (its clock): their age on the page
            "learning": view.get("learning", before.get("learning")),
            "behind": behind,
            # once behind, a node stays marked (with when it was first seen so), even after it caught up
            "fell_behind_at": before.get("fell_behind_at") or (round(wall_ns / 1e9, 3) if behind else None),
        }
        self.views.update(name, view, wall_ns)
        history = self.rates.setdefault(name, deque())
        moved = float(counters.get("events_out") or counters.get("events_in") or 0)
        history.append((now, moved))
        while history and history[0][0] < now - RATE_HISTORY_S:
            history.popleft()

    def _events(self, msg: Message) -> None:
        data = msg.data
        assert data is not None  # (checked by the caller)
        stream = self.events.get(msg.stream)
        width = msg.width or (int(data["x"].max()) + 1)
        height = msg.height or (int(data["y"].max()) + 1)
        if stream is None or (stream.width, stream.height) != (width, height):
            stream = self.events[msg.stream] = EventStream(width, height)
        stream.batches.append(data)
        stream.created_ns = msg.created_ns or stream.created_ns
        stream.newest_t = max(stream.newest_t, int(data["t"][-1]))
        self.stream_t = max(self.stream_t, stream.newest_t)
        oldest = stream.newest_t - self.window_us
        while len(stream.batches) > 1 and int(stream.batches[0]["t"][-1]) < oldest:
            stream.batches.popleft()

    def _spikes(self, msg: Message, now: float) -> None:
        data = msg.data
        assert data is not None
        stream = self.spikes.setdefault(msg.stream, SpikeStream())
        counts = np.bincount(data["c"].astype(np.int64))
        stream.maps = max(stream.maps, counts.shape[0])
        stream.counts.append((now, counts))
        while stream.counts and stream.counts[0][0] < now - 1.0:
            stream.counts.popleft()
        self.stream_t = max(self.stream_t, int(data["t"][-1]))

    def _predictions(self, stream: str, records: np.ndarray) -> None:
        # the first node whose predictions arrive is the one shown: the nodes after a classifier pass its
        # predictions on (an evaluator, a sink), and counting theirs too would count every decision twice
        self.predictions_from = self.predictions_from or stream
        if stream != self.predictions_from:
            return
        self.predictions_seen += records.shape[0]
        last = records[-1]
        scores = np.asarray(last["scores"], dtype=np.float64)
        self.prediction = {
            "t": int(last["t"]),
            "label": int(last["label"]),
            "scores": [round(float(s), 4) if math.isfinite(s) else 0.0 for s in scores],
        }
        self.decisions.add(records[records["decision"] == 1])
        self.stream_t = max(self.stream_t, int(last["t"]))

    def note_command(self, reply: dict[str, Any]) -> None:
        """Keep a command's reply for the page's log (from any thread)."""
        with self._lock:
            self.commands.appendleft(reply | {"at": time.strftime("%H:%M:%S")})

    def count_frame(self, *, sent: bool) -> None:
        """Count a frame sent to a page, or skipped because the page was still busy (from any thread)."""
        with self._lock:
            if sent:
                self.frames_sent += 1
            else:
                self.frames_dropped += 1

    def set_clients(self, n: int) -> None:
        """How many pages are connected now (from any thread)."""
        with self._lock:
            self.clients = n

    def label_time(self) -> int:
        """The time (µs, the stream's own time base) from which a label taught now applies."""
        with self._lock:
            return self.stream_t

    # -- what the page and /api/status get (the server's thread) --------------------------------------
    def status(self) -> dict[str, Any]:
        """The JSON status: every node's counters, the current prediction and the accuracies."""
        with self._lock:
            d = self.decisions
            wall = time.time_ns()
            return {
                "ended": self.ended,
                "classes": self.classes,
                "class_names": list(self.class_names),
                "nodes": {n: v | {"age_s": _age_s(wall, v["wall_ns"])} for n, v in self.nodes.items()},
                "prediction": self.prediction,
                "predictions_seen": self.predictions_seen,
                "predictions_from": self.predictions_from,
                "online_accuracy": d.online[0] / d.online[1] if d.online[1] else None,
                "test_accuracy": d.test[0] / d.test[1] if d.test[1] else None,
                "decisions": {"online": d.online[1], "test": d.test[1]},
                "tap_lost": self.tap_lost,
                "frames_sent": self.frames_sent,
                "frames_dropped": self.frames_dropped,
                "clients": self.clients,
                "stream_t": self.stream_t,
            }

    def view(self, now: float | None = None, *, slow: bool = True) -> dict[str, Any]:
        """Everything the page draws now: the status, event frames, spikes per map, rates, curves; with
        ``slow`` also what changes at most once a second (rates, kernels, spikes per map per layer: the page
        keeps the last it got), without it a frame costs less to make, send and draw."""
        now = time.monotonic() if now is None else now
        with self._lock:
            batches = {
                name: (s.width, s.height, list(s.batches), s.newest_t, s.created_ns) for name, s in self.events.items()
            }
            spikes = {name: (s.maps, [c for at, c in s.counts if at >= now - 1.0]) for name, s in self.spikes.items()}
            rates = {name: list(h) for name, h in self.rates.items()} if slow else {}
            d = self.decisions
            decisions = {
                "recent": list(d.recent),
                "online_curve": _thin(d.online_curve),
                "test_curve": _thin(d.test_curve),
                "confusion": (d.test_confusion if d.test[1] else d.online_confusion).tolist(),
                "confusion_of": "test" if d.test[1] else "online",
            }
            commands = list(self.commands)
            kernels, layers = (self.views.kernels(), self.views.layers()) if slow else ({}, {})
        out = self.status()
        out["frames"] = {name: self._cached_frame(name, *b) for name, b in batches.items()}
        out["spikes"] = {name: _per_map(maps, counts) for name, (maps, counts) in spikes.items()}
        out["decisions"] |= decisions
        out["commands"] = commands
        if slow:
            out["rates"] = {name: _rates(h) for name, h in rates.items()}
            out["kernels"] = kernels
            out["layers"] = layers
        return out

    def _cached_frame(
        self, name: str, width: int, height: int, batches: list[np.ndarray], newest_t: int, created_ns: int
    ) -> dict[str, Any]:
        """``_frame``, made again only when new events came (a paused stream costs nothing per frame)."""
        key = (newest_t, len(batches), id(batches[-1]) if batches else 0)
        cached = self._frames.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        frame = self._frame(width, height, batches, newest_t, created_ns)
        self._frames[name] = (key, frame)
        return frame

    def _frame(
        self, width: int, height: int, batches: list[np.ndarray], newest_t: int, created_ns: int
    ) -> dict[str, Any]:
        """ON minus OFF events per pixel over the last window, as base64 int8, binned to fit the page."""
        scale = max(1, math.ceil(max(width, height) / MAX_FRAME_SIDE))
        w, h = -(-width // scale), -(-height // scale)
        image = np.zeros(w * h, np.int64)
        if batches:
            ev = np.concatenate(batches)[-MAX_FRAME_EVENTS:]
            # the window, and no pixel beyond the declared sensor
            ev = ev[(ev["t"] >= newest_t - self.window_us) & (ev["x"] < width) & (ev["y"] < height)]
            idx = (ev["y"].astype(np.int64) // scale) * w + ev["x"].astype(np.int64) // scale
            on = ev["p"] > 0
            image = np.bincount(idx[on], minlength=w * h) - np.bincount(idx[~on], minlength=w * h)
        pixels = np.clip(image, -127, 127).astype(np.int8)
        return {
            "width": w,
            "height": h,
            "sensor": [width, height],
            "scale": scale,
            "pixels": base64.b64encode(pixels.tobytes()).decode("ascii"),
            "created_ms": created_ns / 1e6,  # when its newest events were sent: the page's frame latency
        }


def _age_s(wall_ns: int, read_ns: int | None) -> float | None:
    """Seconds since a node read the counters the page shows (none before its first report)."""
    return None if read_ns is None else round((wall_ns - read_ns) / 1e9, 2)


def _thin(curve: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most ``CURVE_POINTS`` points of ``curve``, evenly spread, its last one included."""
    step = -(-len(curve) // CURVE_POINTS)
    if step <= 1:
        return list(curve)
    return [*curve[:-1:step], curve[-1]]


def _per_map(maps: int, counts: list[np.ndarray]) -> list[int]:
    total = np.zeros(maps, np.int64)
    for c in counts:
        total[: c.shape[0]] += c
    return [int(v) for v in total]


def _rates(history: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Events per second between consecutive counter readings, with their age in seconds (<= 0)."""
    if not history:
        return []
    now = history[-1][0]
    return [
        (round(t1 - now, 2), round((e1 - e0) / (t1 - t0), 1))
        for (t0, e0), (t1, e1) in itertools.pairwise(history)
        if t1 > t0
    ]
