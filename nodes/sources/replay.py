"""``type = "replay"``: an N-MNIST folder as labelled phases, or a recording file paced and looped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from nodes.sources.paced_file import PacedFile
from nodes.sources.pacing import Pacer
from nodes.sources.phased import Chunk, PhasedSource, StreamParams, existing_data_path
from pipeline.config import data_path
from pipeline.events import EVENT_DTYPE, LABEL_DTYPE
from pipeline.message import Message, events_message
from pipeline.node import NodeContext
from pipeline.progress import Progress


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

    @override
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loop < 0 or self.start_us < 0 or self.stop_us < 0:
            msg = f"loop, start_us, stop_us must be >= 0, got {self.loop}, {self.start_us}, {self.stop_us}"
            raise ValueError(msg)
        if self.stop_us and self.stop_us <= self.start_us:
            msg = f"stop_us ({self.stop_us}) must be after start_us ({self.start_us})"
            raise ValueError(msg)


class ReplaySource(PhasedSource):
    """``type = "replay"``: a recording file (paced, looped, windowed) or an N-MNIST folder (labelled
    phases, samples in seeded order, labels at each sample's first event)."""

    Config = ReplayConfig
    config: ReplayConfig
    width = 34
    height = 34
    splits = ("Train", "Test")

    @classmethod
    @override
    def stream_facts(cls, config: ReplayConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        # an N-MNIST folder is labelled 34x34 digits; a single file's sensor is known only once it is open
        return super().stream_facts(config, received) if data_path(config.path).is_dir() else {}

    @classmethod
    @override
    def check_available(cls, name: str, config: ReplayConfig) -> None:
        existing_data_path(name, "path", config.path)

    def __init__(self, name: str, config: ReplayConfig, context: NodeContext) -> None:
        self.folder = data_path(config.path)
        super().__init__(name, config, context)
        self._file_events = 0

    @override
    async def start(self) -> None:
        existing_data_path(self.name, "path", self.config.path)  # a ConfigError naming where it looked
        if self.folder.is_dir():
            await super().start()

    @override
    def load_split(self, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        from recordings import NMnistDataset

        ds = NMnistDataset(self.folder, split=split)
        return [ds.load(i) for i in range(len(ds))], ds.labels.copy()

    @override
    def chunks(self, split: str, order: np.ndarray, t0: int, train: bool) -> Iterator[Chunk]:
        samples, labels = self._data[split]
        for start in range(0, order.shape[0], self.config.chunk):
            idx = order[start : start + self.config.chunk].tolist()
            events, recs, t0 = shift_samples([samples[i] for i in idx], [int(labels[i]) for i in idx], t0, train)
            yield events, recs, len(idx)

    @override
    async def _stream(self, live: Callable[[], bool]) -> AsyncIterator[Message]:
        if self.folder.is_dir():
            async for msg in super()._stream(live):
                yield msg
            return
        async for msg in self._produce_file(live):
            yield msg

    async def _produce_file(self, live: Callable[[], bool]) -> AsyncIterator[Message]:
        c = self.config
        # the next lap starts 1 µs after the last event of this one
        file = await asyncio.to_thread(PacedFile.read, self.folder, gap_us=1, start_us=c.start_us, stop_us=c.stop_us)
        if file.size_from_events:
            self.log.info("%s: %s states no sensor size; using %dx%d", self.name, self.folder, file.width, file.height)
        pacer = Pacer(c.speed)
        progress = Progress(f"{self.name}: {self.folder.name}", None, self.log)
        lap = 0
        while c.loop == 0 or lap < c.loop:
            for piece in file.pieces(lap, c.slice_us if c.speed > 0 else 0, c.batch):
                if live():
                    await pacer.wait(int(piece["t"][-1]))
                self._file_events += piece.shape[0]
                progress.update(0, piece.shape[0])
                yield events_message(piece, file.width, file.height)
            lap += 1
            if not file.events.shape[0]:
                break
        progress.close()

    @override
    def results(self) -> dict[str, Any]:
        if self.folder.is_dir():
            return super().results()
        return {"events_replayed": self._file_events}
