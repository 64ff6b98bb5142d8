"""Labelled dataset sources: one continuous event stream in train/test phases, with no resets.

A phase replays ``samples`` samples of a ``split`` (``passes`` times, in seeded random order), each sample's
timestamps shifted so that time keeps increasing with no overlap and no gap, and a labels record at each
sample's first event. Between phases the source sends in-band control messages that switch learning on or
off for the feature extractor (scope "features") and the classifier (scope "classifier"); a phase whose
classifier does not learn marks its labels as evaluation-only (``train = 0``): the classifier never sees
them, only the evaluator does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.config import build_params, data_path, where_looked
from pipeline.errors import ConfigError
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE
from pipeline.message import FREEZE, RELABEL, UNFREEZE, Message, control_message, events_message, labels_message
from pipeline.node import NodeContext, Source
from pipeline.progress import Progress

Chunk = tuple[np.ndarray, np.ndarray, int]  # events, label records, samples in the chunk


@dataclass(frozen=True, kw_only=True)
class Phase:
    """One phase of a labelled stream.

    ``split``: which part of the dataset ("train"/"test", or a folder name such as "Train"), optionally
    narrowed to a range of its samples in their stored order, Python style: "train[:50000]" and
    "train[50000:]" are disjoint (a validation set held out of the training data for tuning).
    ``samples``: how many samples per pass (0 = all of the split). ``passes``: passes over them (each
    pass in a new seeded order). ``features`` / ``classifier``: whether the feature extractor / the
    classifier learn during the phase; with ``classifier = false`` labels are evaluation-only.
    ``relabel``: at the phase start, label-assignment readouts forget their labels (thesis 3.3.1 labels
    the top neurons in a pass over the training set after training, with the features frozen).
    ``name``: shown in progress output."""

    split: str = "train"
    samples: int = 0
    passes: int = 1
    features: bool = True
    classifier: bool = True
    relabel: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if self.samples < 0 or self.passes < 1:
            raise ValueError(f"phase needs samples >= 0 and passes >= 1, got {self.samples}, {self.passes}")
        parse_split(self.split)


_SPLIT_RANGE = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<lo>\d*):(?P<hi>\d*)\])?$")


def parse_split(text: str) -> tuple[str, int, int | None]:
    """``"train[100:200]"`` -> ``("train", 100, 200)``; ``"train"`` -> ``("train", 0, None)``."""
    m = _SPLIT_RANGE.match(text)
    if m is None:
        raise ValueError(f"split must be a name or name[start:stop], got {text!r}")
    lo = int(m["lo"]) if m["lo"] else 0
    hi = int(m["hi"]) if m["hi"] else None
    if hi is not None and hi <= lo:
        raise ValueError(f"split {text!r}: an empty range")
    return m["name"], lo, hi


class Pacer:
    """Paces a stream by its own timestamps: ``speed`` 1.0 = real time, 4.0 = four times faster, 0 = no
    pacing (as fast as the graph accepts). The first timestamp seen is the origin."""

    def __init__(self, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self._wall0 = 0.0
        self._t0: int | None = None

    def due(self, t_us: int) -> float:
        """Seconds to wait before an event with timestamp ``t_us`` may leave (<= 0: now)."""
        if self.speed <= 0:
            return 0.0
        if self._t0 is None:
            self._t0, self._wall0 = t_us, time.perf_counter()
        return self._wall0 + (t_us - self._t0) / 1e6 / self.speed - time.perf_counter()

    async def wait(self, t_us: int) -> None:
        delay = self.due(t_us)
        if delay > 0:
            await asyncio.sleep(delay)


def time_slices(events: np.ndarray, slice_us: int, max_events: int) -> Iterator[np.ndarray]:
    """Consecutive pieces of ``events`` covering at most ``slice_us`` of stream time and ``max_events``."""
    if events.shape[0] == 0:
        return
    t = events["t"]
    edges = np.arange(int(t[0]) // slice_us + 1, int(t[-1]) // slice_us + 1, dtype=np.int64) * slice_us
    cuts = np.searchsorted(t, edges, side="left")
    start = 0
    for cut in [*cuts.tolist(), events.shape[0]]:
        while cut - start > max_events:
            yield events[start : start + max_events]
            start += max_events
        if cut > start:
            yield events[start:cut]
            start = cut


def _data_folder(node: str, key: str, path: str) -> Path:
    """``data_path(path)``, or a config error saying where it was looked for."""
    folder = data_path(path)
    if not folder.exists():
        raise ConfigError(f"nodes.{node}.{key}: not found (looked for {where_looked(path)})")
    return folder


class PhasedSource(Source):
    """Base of labelled dataset sources. Subclasses implement ``split_size`` and ``chunks``."""

    width: int
    height: int
    #: the split names a phase may use
    splits: tuple[str, ...] = ("train", "test")
    #: labels are 0 .. classes - 1 (digits)
    classes: int = 10

    @classmethod
    def stream_facts(cls, config: Any, received: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"sensor": (cls.width, cls.height), "classes": cls.classes}

    def __init__(self, name: str, config: Any, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self._data: dict[str, tuple[Any, np.ndarray]] = {}  # split -> (samples, labels), from load_split
        self._samples = 0
        self._events = 0
        self._per_phase: list[dict[str, Any]] = []
        self._resume_at = 0  # messages to skip: those a restored source had delivered before it stopped
        self._warnings: list[str] = []
        self._position = 0  # messages of the stream generated so far (skipped ones included)
        self._phases = tuple(build_params(Phase, p, f"nodes.{name}.phases[{i}]") for i, p in enumerate(config.phases))
        if not self._phases:
            raise ConfigError(f"nodes.{name}.phases: at least one phase is needed")

    # -- what a dataset provides ------------------------------------------------------------------------
    def load_split(self, split: str) -> tuple[Any, np.ndarray]:
        """``(samples, labels)`` of one split (runs in a worker thread, once per split)."""
        raise NotImplementedError

    async def start(self) -> None:
        for phase in self.phases():
            split, lo, hi = parse_split(phase.split)
            if split not in self.splits:
                raise ConfigError(f"nodes.{self.name}: splits are {', '.join(map(repr, self.splits))}, got {split!r}")
            if split not in self._data:
                self._data[split] = await asyncio.to_thread(self.load_split, split)
            size = self.split_size(split)
            if lo >= size or (hi is not None and hi > size):
                raise ConfigError(
                    f"nodes.{self.name}: split {phase.split!r} is out of range: {split!r} has {size} samples"
                )

    def split_size(self, split: str) -> int:
        return len(self._data[split][1])

    def _indices(self, phase: Phase) -> tuple[str, int, int]:
        """The dataset split of a phase and the range of its samples, ``[lo, hi)``."""
        split, lo, hi = parse_split(phase.split)
        return split, lo, self.split_size(split) if hi is None else hi

    def chunks(
        self, split: str, order: np.ndarray, t0: int, train: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """Events and label records of the samples ``order`` (indices into ``split``) as one stream
        starting at ``t0``, in chunks: ``(events, labels, samples_in_chunk)``. Runs in a worker thread."""
        raise NotImplementedError

    # -- the stream ---------------------------------------------------------------------------------------
    def phases(self) -> tuple[Phase, ...]:
        return self._phases

    @property
    def events_total(self) -> int | None:
        return None

    # -- position: the stream is a pure function of the configuration, so a restored source regenerates it
    # and skips what it had already delivered (no pacing while skipping). Control messages are skipped
    # too: a relabel that already happened is not repeated.
    def _stream_id(self) -> int:
        """A fingerprint of what decides the message sequence: the configuration except the pace (only
        whether the stream is paced, which slices it differently)."""
        c = dataclasses.replace(self.config, speed=1.0 if self.config.speed > 0 else 0.0)
        return int.from_bytes(hashlib.blake2b(repr(c).encode(), digest_size=8).digest(), "little", signed=True)

    def snapshot(self) -> dict[str, np.ndarray]:
        return {"delivered": np.array([self.delivered], dtype=np.int64), "stream": np.array([self._stream_id()])}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        if int(state["stream"][0]) != self._stream_id():
            raise ValueError(
                "it was made by a source with another configuration (phases, seed, batch, data...), so its "
                "position does not apply to this stream"
            )
        self.delivered = self._resume_at = int(state["delivered"][0])
        self.log.info("%s: resuming after the %d messages already delivered", self.name, self._resume_at)

    async def produce(self) -> AsyncIterator[Message]:
        self._position = 0
        async for msg in self._stream(lambda: self._position >= self._resume_at):
            self._position += 1
            if self._position > self._resume_at:
                yield msg
        if self._resume_at and self._position <= self._resume_at:
            self._warnings.append(
                "the restored stream had already been delivered to its end: nothing was replayed, and the "
                "figures are those kept in the state (start afresh with another or an empty state folder)"
            )
            self.log.warning("%s: %s", self.name, self._warnings[-1])

    async def _stream(self, live: Callable[[], bool]) -> AsyncIterator[Message]:
        """The whole stream from its start. ``live()`` is false while a restored source skips ahead."""
        rng = np.random.default_rng(self.config.seed)
        t0 = 0
        batch = self.config.batch
        pacer = Pacer(self.config.speed)
        phases = self.phases()
        for k, phase in enumerate(phases):
            split, lo, hi = self._indices(phase)
            n = phase.samples or hi - lo
            if n > hi - lo:
                raise ValueError(f"phase {k} asks for {n} samples of split {phase.split!r}, which has {hi - lo}")
            yield control_message(UNFREEZE if phase.features else FREEZE, scope="features")
            yield control_message(UNFREEZE if phase.classifier else FREEZE, scope="classifier")
            if phase.relabel:
                yield control_message(RELABEL, scope="classifier")
            label = phase.name or f"phase {k + 1}/{len(phases)} ({phase.split})"
            progress = Progress(f"{self.name}: {label}", n * phase.passes, self.log)
            events_before, samples_before = self._events, self._samples
            for _ in range(phase.passes):
                order = lo + rng.permutation(hi - lo)[:n]
                it = self.chunks(split, order, t0, phase.classifier)
                while True:
                    item = await asyncio.to_thread(next, it, None)
                    if item is None:
                        break
                    events, labels, count = item
                    if labels.shape[0]:
                        yield labels_message(np.ascontiguousarray(labels, dtype=LABEL_DTYPE))
                    if pacer.speed > 0:
                        for piece in time_slices(events, self.config.slice_us, batch):
                            if live():
                                await pacer.wait(int(piece["t"][-1]))
                            yield events_message(piece, self.width, self.height)
                    else:
                        for start in range(0, events.shape[0], batch):
                            yield events_message(events[start : start + batch], self.width, self.height)
                    if events.shape[0]:
                        t0 = int(events["t"][-1]) + 1
                    if labels.shape[0]:
                        t0 = max(t0, int(labels["t"][-1]) + 1)
                    self._samples += count
                    self._events += int(events.shape[0])
                    progress.update(count, int(events.shape[0]))
                t0 = self.after_pass(t0)
            progress.close()
            self._per_phase.append(
                {
                    "split": phase.split,
                    "samples": self._samples - samples_before,
                    "events": self._events - events_before,
                    "features_learn": phase.features,
                    "classifier_learn": phase.classifier,
                }
            )

    def after_pass(self, t: int) -> int:
        """Where the next pass starts (default: right after the last event)."""
        return t

    def results(self) -> dict[str, Any]:
        return {
            "samples_replayed": self._samples,
            "events_replayed": self._events,
            "phases": self._per_phase,
            "warnings": self._warnings,
        }


DEFAULT_PHASES: tuple[dict[str, Any], ...] = (
    {"split": "train", "name": "train"},
    {"split": "test", "features": False, "classifier": False, "name": "test"},
)


@dataclass(frozen=True, kw_only=True)
class StreamParams:
    """What every labelled dataset source shares.

    ``phases``: see ``Phase``. ``seed``: sample order (and whatever noise the source adds).
    ``batch``: events per message. ``speed``: 1.0 = real time by the stream's own timestamps, 4.0 = four
    times faster, 0 = as fast as the graph accepts; a paced stream leaves in slices of ``slice_us`` of
    stream time."""

    phases: tuple[dict[str, Any], ...] = DEFAULT_PHASES
    seed: int = 0
    batch: int = 10_000
    speed: float = 0.0
    slice_us: int = 1000

    def __post_init__(self) -> None:
        if self.batch < 1 or self.slice_us < 1 or self.speed < 0:
            raise ValueError(
                f"batch and slice_us must be >= 1 and speed >= 0, got {self.batch}, {self.slice_us}, {self.speed}"
            )


@dataclass(frozen=True, kw_only=True)
class MnistConfig(StreamParams):
    """MNIST digits as spike trains (thesis 3.3.1).

    ``root``: folder with the four IDX files (relative paths resolve against ``SPIKESTREAM_DATA``).
    ``phases`` default: one training pass over the 60,000, then the 10,000 test images with learning off;
    ``seed`` also drives the spike noise. ``chunk``: images encoded at a time. ``max_rate_hz``,
    ``duration_us``, ``rate_std``: the encoder (``nodes.encoder.rate.RateEncoderParams``; defaults give
    ~1,100-3,400 events per image)."""

    root: str = "mnist"
    chunk: int = 250
    max_rate_hz: float = 200.0
    duration_us: int = 50_000
    rate_std: float = 0.05


class MnistSource(PhasedSource):
    """``type = "mnist"``: static MNIST images, rate encoded, as one continuous labelled stream."""

    Config = MnistConfig
    width = 28
    height = 28

    def __init__(self, name: str, config: MnistConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        from nodes.encoder.rate import RateEncoderParams

        self.params = RateEncoderParams(
            max_rate_hz=config.max_rate_hz, duration_us=config.duration_us, rate_std=config.rate_std
        )
        self._presented = 0

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        from recordings.mnist import load_mnist

        return load_mnist(_data_folder(self.name, "root", self.config.root), split)

    def chunks(
        self, split: str, order: np.ndarray, t0: int, train: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        from nodes.encoder.rate import images_to_stream

        images, labels = self._data[split]
        step = self.config.chunk
        for start in range(0, order.shape[0], step):
            idx = order[start : start + step]
            events, recs = images_to_stream(
                images[idx],
                labels[idx].astype(np.int64),
                seed=self.config.seed,
                train=train,
                params=self.params,
                t0=t0 + start * self.params.duration_us,
                first_index=self._presented,
            )
            self._presented += idx.shape[0]
            yield events, recs, int(idx.shape[0])


@dataclass(frozen=True, kw_only=True)
class SaccadeConfig(StreamParams):
    """Digits turned into an N-MNIST-like stream: three saccades in front of a simulated sensor, delta
    encoded (``nodes.encoder.saccade``). 34x34, two channels (ON/OFF).

    ``digits``: "font" (digits drawn with OpenCV's built-in fonts: no files needed) or "mnist" (the IDX
    files under ``root``, all 70,000 digits). ``font_train`` / ``font_test``: how many font digits
    each split has. ``seed`` also drives the font jitter and the sensor noise.
    ``noise_rate_hz``: background activity per pixel. ``threshold``:
    ON and OFF contrast thresholds of the simulated sensor (log intensity; 0.7 gives ~4,100 events per
    digit, like real N-MNIST's median of 4,164)."""

    digits: Literal["font", "mnist"] = "font"
    root: str = "mnist"
    font_train: int = 6000
    font_test: int = 1000
    noise_rate_hz: float = 0.2
    threshold: float = 0.7


class SaccadeSource(PhasedSource):
    """``type = "saccades"``: saccade digits as one continuous labelled stream."""

    Config = SaccadeConfig
    width = 34
    height = 34

    def __init__(self, name: str, config: SaccadeConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        from nodes.encoder.saccade import SaccadeParams

        self.params = SaccadeParams(
            noise_rate_hz=config.noise_rate_hz, on_threshold=config.threshold, off_threshold=config.threshold
        )
        self._calls = 0

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if self.config.digits == "mnist":
            from recordings.mnist import load_mnist

            return load_mnist(_data_folder(self.name, "root", self.config.root), split)
        from nodes.encoder.saccade import render_font_digits

        n = self.config.font_train if split == "train" else self.config.font_test
        return render_font_digits(n, self.config.seed * 2 + (split == "test"))

    def chunks(self, split: str, order: np.ndarray, t0: int, train: bool) -> Iterator[Chunk]:
        from nodes.encoder.saccade import saccade_stream

        images, labels = self._data[split]
        self._calls += 1
        for events, recs in saccade_stream(
            images[order],
            labels[order].astype(np.int64),
            seed=self.config.seed * 1000 + self._calls,
            params=self.params,
            t0=t0,
            train=train,
        ):
            # a sample owns the events in (start, start + sample_us]: its first possible event is at start + 1,
            # and an event at exactly the next start still belongs to the previous sample
            recs["t"] += 1
            yield events, recs, int(recs.shape[0])


def shift_samples(
    samples: list[np.ndarray], labels: list[int], t0: int, train: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """Lay recorded samples end to end from ``t0``: sample k starts right after the last event of sample
    k-1 (its own leading silence kept, no gap inserted), with a label record at its first event.
    Returns ``(events, label records, t where the next sample starts)``."""
    parts = []
    recs = np.zeros(len(samples), dtype=LABEL_DTYPE)
    start = t0
    for k, (ev, label) in enumerate(zip(samples, labels, strict=True)):
        shifted = np.zeros(ev.shape[0], dtype=EVENT_DTYPE)
        if ev.shape[0]:
            base = start - min(int(ev["t"][0]), 0)
            shifted["t"] = ev["t"] + base
            shifted["x"], shifted["y"], shifted["p"] = ev["x"], ev["y"], ev["p"]
            recs[k] = (int(shifted["t"][0]), label, int(train))
            start = int(shifted["t"][-1]) + 1
        else:
            recs[k] = (start, label, int(train))
        parts.append(shifted)
    events = np.concatenate(parts) if parts else np.zeros(0, dtype=EVENT_DTYPE)
    return events, recs, start


@dataclass(frozen=True, kw_only=True)
class ReplayConfig(StreamParams):
    """Replay a recording, or a labelled N-MNIST folder, as one continuous stream.

    ``path``: an event file (any format ``spikestream info`` reads) or an N-MNIST folder (``Train/``,
    ``Test/``); relative paths resolve against ``SPIKESTREAM_DATA``. Files: ``loop`` = passes (0 = forever;
    each pass continues the time line), ``start_us`` / ``stop_us`` = the part to play, relative to the first
    event (``stop_us`` 0 = to the end). Folders: the ``phases``' splits are the folder names "Train"/"Test";
    ``chunk`` = samples read at a time."""

    path: str
    loop: int = 1
    start_us: int = 0
    stop_us: int = 0
    phases: tuple[dict[str, Any], ...] = (
        {"split": "Train", "name": "train"},
        {"split": "Test", "features": False, "classifier": False, "name": "test"},
    )
    chunk: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loop < 0 or self.start_us < 0 or self.stop_us < 0:
            raise ValueError(f"loop, start_us, stop_us must be >= 0, got {self.loop}, {self.start_us}, {self.stop_us}")
        if self.stop_us and self.stop_us <= self.start_us:
            raise ValueError(f"stop_us ({self.stop_us}) must be after start_us ({self.start_us})")


class ReplaySource(PhasedSource):
    """``type = "replay"``: a recording file (paced, looped, windowed) or an N-MNIST folder (labelled
    phases, samples in seeded order, labels at each sample's first event)."""

    Config = ReplayConfig
    width = 34
    height = 34
    splits = ("Train", "Test")

    @classmethod
    def stream_facts(cls, config: ReplayConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        # an N-MNIST folder is labelled 34x34 digits; a single file's sensor is known only once it is open
        return super().stream_facts(config, received) if data_path(config.path).is_dir() else {}

    def __init__(self, name: str, config: ReplayConfig, context: NodeContext) -> None:
        self.folder = data_path(config.path)
        super().__init__(name, config, context)
        self._file_events = 0

    async def start(self) -> None:
        if not self.folder.exists():
            raise ConfigError(f"nodes.{self.name}.path: not found (looked for {where_looked(self.config.path)})")
        if self.folder.is_dir():
            await super().start()

    def load_split(self, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        from recordings import NMnistDataset

        ds = NMnistDataset(self.folder, split=split)
        return [ds.load(i) for i in range(len(ds))], ds.labels.copy()

    def chunks(self, split: str, order: np.ndarray, t0: int, train: bool) -> Iterator[Chunk]:
        samples, labels = self._data[split]
        for start in range(0, order.shape[0], self.config.chunk):
            idx = order[start : start + self.config.chunk].tolist()
            events, recs, t0 = shift_samples([samples[i] for i in idx], [int(labels[i]) for i in idx], t0, train)
            yield events, recs, len(idx)

    async def _stream(self, live: Callable[[], bool]) -> AsyncIterator[Message]:
        if self.folder.is_dir():
            async for msg in super()._stream(live):
                yield msg
            return
        async for msg in self._produce_file(live):
            yield msg

    async def _produce_file(self, live: Callable[[], bool]) -> AsyncIterator[Message]:
        from recordings import open_recording

        c = self.config
        rec = await asyncio.to_thread(open_recording, self.folder)
        events = await asyncio.to_thread(rec.read_all)
        width, height = rec.width, rec.height
        if width is None or height is None:
            width = int(events["x"].max()) + 1 if events.shape[0] else 1
            height = int(events["y"].max()) + 1 if events.shape[0] else 1
            self.log.info("%s: %s states no sensor size; using %dx%d", self.name, self.folder, width, height)
        if events.shape[0]:
            first = int(events["t"][0])
            lo = np.searchsorted(events["t"], first + c.start_us, side="left")
            hi = np.searchsorted(events["t"], first + c.stop_us, side="left") if c.stop_us else events.shape[0]
            events = events[lo:hi]
        period = int(events["t"][-1] - events["t"][0]) + 1 if events.shape[0] else 0
        pacer = Pacer(c.speed)
        progress = Progress(f"{self.name}: {self.folder.name}", None, self.log)
        lap = 0
        while c.loop == 0 or lap < c.loop:
            offset = lap * period
            pieces = (
                time_slices(events, c.slice_us, c.batch)
                if c.speed > 0
                else (events[i : i + c.batch] for i in range(0, events.shape[0], c.batch))
            )
            for piece in pieces:
                out = piece
                if offset:
                    out = np.zeros(piece.shape[0], dtype=EVENT_DTYPE)
                    out["t"] = piece["t"] + offset
                    out["x"], out["y"], out["p"] = piece["x"], piece["y"], piece["p"]
                if live():
                    await pacer.wait(int(out["t"][-1]))
                self._file_events += out.shape[0]
                progress.update(0, out.shape[0])
                yield events_message(out, width, height)
            lap += 1
            if not events.shape[0]:
                break
        progress.close()

    def results(self) -> dict[str, Any]:
        if self.folder.is_dir():
            return super().results()
        return {"events_replayed": self._file_events}
