"""``type = "mnist"``: static MNIST images, rate encoded (thesis 3.3.1), as one labelled stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from typing_extensions import override

from nodes.sources.phased import Chunk, PhasedSource, StreamParams, existing_data_path
from pipeline.node import NodeContext


@dataclass(frozen=True, kw_only=True)
class MnistConfig(StreamParams):
    """MNIST digits as spike trains (thesis 3.3.1).

    ``root``: folder with the four IDX files (relative paths resolve against ``SPIKESTREAM_DATA``).
    ``phases`` default: one training pass over the 60,000, then the 10,000 test images with learning off;
    ``seed`` also drives the spike noise. ``chunk``: images encoded at a time. ``max_rate_hz``,
    ``duration_us``, ``rate_std``: the encoder (``nodes.sources.synthesis.rate.RateEncoderParams``; defaults give
    ~1,100-3,400 events per image)."""

    root: str = "mnist"
    chunk: int = 250
    max_rate_hz: float = 200.0
    duration_us: int = 50_000
    rate_std: float = 0.05


class MnistSource(PhasedSource):
    """``type = "mnist"``: static MNIST images, rate encoded, as one continuous labelled stream."""

    Config = MnistConfig
    config: MnistConfig
    width = 28
    height = 28

    @classmethod
    @override
    def check_available(cls, name: str, config: MnistConfig) -> None:
        existing_data_path(name, "root", config.root)

    def __init__(self, name: str, config: MnistConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        from nodes.sources.synthesis.rate import RateEncoderParams

        self.params = RateEncoderParams(
            max_rate_hz=config.max_rate_hz, duration_us=config.duration_us, rate_std=config.rate_std
        )
        self._presented = 0

    @override
    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        from recordings.datasets.mnist import load_mnist

        return load_mnist(existing_data_path(self.name, "root", self.config.root), split)

    @override
    def chunks(self, split: str, order: np.ndarray, t0: int, train: bool) -> Iterator[Chunk]:
        from nodes.sources.synthesis.rate import images_to_stream

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
