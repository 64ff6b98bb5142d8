"""The engine of labelled dataset sources: one continuous event stream in train/test phases, no resets.

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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from nodes.sources.pacing import Pacer, time_slices
from pipeline.config import build_params, data_path, where_looked
from pipeline.errors import ConfigError
from pipeline.events import LABEL_DTYPE
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
    ``name``: shown in progress output. ``seed``: the phase draws its sample order from a generator of its
    own (a validation phase held out for tuning then scores every trial on the same samples, whatever
    their other seeds); without it the order comes from the source's ``seed``."""

    split: str = "train"
    samples: int = 0
    passes: int = 1
    features: bool = True
    classifier: bool = True
    relabel: bool = False
    name: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.samples < 0 or self.passes < 1:
            msg = f"phase needs samples >= 0 and passes >= 1, got {self.samples}, {self.passes}"
            raise ValueError(msg)
        parse_split(self.split)


_SPLIT_RANGE = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<lo>\d*):(?P<hi>\d*)\])?$")


def parse_split(text: str) -> tuple[str, int, int | None]:
    """``"train[100:200]"`` -> ``("train", 100, 200)``; ``"train"`` -> ``("train", 0, None)``."""
    m = _SPLIT_RANGE.match(text)
    if m is None:
        msg = f"split must be a name or name[start:stop], got {text!r}"
        raise ValueError(msg)
    lo = int(m["lo"]) if m["lo"] else 0
    hi = int(m["hi"]) if m["hi"] else None
    if hi is not None and hi <= lo:
        msg = f"split {text!r}: an empty range"
        raise ValueError(msg)
    return m["name"], lo, hi


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
            msg = f"batch and slice_us must be >= 1 and speed >= 0, got {self.batch}, {self.slice_us}, {self.speed}"
            raise ValueError(msg)


def existing_data_path(node: str, key: str, path: str) -> Path:
    """``data_path(path)``, or a config error saying where it was looked for."""
    folder = data_path(path)
    if not folder.exists():
        msg = f"nodes.{node}.{key}: not found (looked for {where_looked(path)})"
        raise ConfigError(msg)
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
    @override
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
            msg = f"nodes.{name}.phases: at least one phase is needed"
            raise ConfigError(msg)

    # -- what a dataset provides ------------------------------------------------------------------------
    def load_split(self, split: str) -> tuple[Any, np.ndarray]:
        """``(samples, labels)`` of one split (runs in a worker thread, once per split)."""
        raise NotImplementedError

    @override
    async def start(self) -> None:
        for phase in self.phases():
            split, lo, hi = parse_split(phase.split)
            if split not in self.splits:
                msg = f"nodes.{self.name}: splits are {', '.join(map(repr, self.splits))}, got {split!r}"
                raise ConfigError(msg)
            if split not in self._data:
                self._data[split] = await asyncio.to_thread(self.load_split, split)
            size = self.split_size(split)
            if lo >= size or (hi is not None and hi > size):
                msg = f"nodes.{self.name}: split {phase.split!r} is out of range: {split!r} has {size} samples"
                raise ConfigError(msg)

    def split_size(self, split: str) -> int:
        """Samples in a loaded split."""
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
        """The phases of the stream, in order."""
        return self._phases

    @property
    @override
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

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        return {"delivered": np.array([self.delivered], dtype=np.int64), "stream": np.array([self._stream_id()])}

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        if int(state["stream"][0]) != self._stream_id():
            msg = (
                "it was made by a source with another configuration (phases, seed, batch, data...), so its "
                "position does not apply to this stream"
            )
            raise ValueError(msg)
        self.delivered = self._resume_at = int(state["delivered"][0])
        self.log.info("%s: resuming after the %d messages already delivered", self.name, self._resume_at)

    @override
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
                msg = f"phase {k} asks for {n} samples of split {phase.split!r}, which has {hi - lo}"
                raise ValueError(msg)
            yield control_message(UNFREEZE if phase.features else FREEZE, scope="features")
            yield control_message(UNFREEZE if phase.classifier else FREEZE, scope="classifier")
            if phase.relabel:
                yield control_message(RELABEL, scope="classifier")
            label = phase.name or f"phase {k + 1}/{len(phases)} ({phase.split})"
            progress = Progress(f"{self.name}: {label}", n * phase.passes, self.log)
            events_before, samples_before = self._events, self._samples
            phase_rng = rng if phase.seed is None else np.random.default_rng(phase.seed)
            for _ in range(phase.passes):
                order = lo + phase_rng.permutation(hi - lo)[:n]
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

    @override
    def results(self) -> dict[str, Any]:
        return {
            "samples_replayed": self._samples,
            "events_replayed": self._events,
            "phases": self._per_phase,
            "warnings": self._warnings,
        }
