"""``type = "saccades"``: digits moved in saccades in front of a simulated sensor, as one labelled stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from typing_extensions import override

from nodes.sources.phased import Chunk, PhasedSource, StreamParams, existing_data_path
from pipeline.node import NodeContext


@dataclass(frozen=True, kw_only=True)
class SaccadeConfig(StreamParams):
    """Digits turned into an N-MNIST-like stream: three saccades in front of a simulated sensor, delta
    encoded (``nodes.sources.synthesis.saccade``). 34x34, two channels (ON/OFF).

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
    config: SaccadeConfig
    width = 34
    height = 34

    @classmethod
    @override
    def check_available(cls, name: str, config: SaccadeConfig) -> None:
        if config.digits == "mnist":  # font digits are drawn: no files
            existing_data_path(name, "root", config.root)

    def __init__(self, name: str, config: SaccadeConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        from nodes.sources.synthesis.saccade import SaccadeParams

        self.params = SaccadeParams(
            noise_rate_hz=config.noise_rate_hz, on_threshold=config.threshold, off_threshold=config.threshold
        )
        self._calls = 0

    @override
    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if self.config.digits == "mnist":
            from recordings.datasets.mnist import load_mnist

            return load_mnist(existing_data_path(self.name, "root", self.config.root), split)
        from nodes.sources.synthesis.font_digits import render_font_digits

        n = self.config.font_train if split == "train" else self.config.font_test
        return render_font_digits(n, self.config.seed * 2 + (split == "test"))

    @override
    def chunks(self, split: str, order: np.ndarray, t0: int, train: bool) -> Iterator[Chunk]:
        from nodes.sources.synthesis.saccade import saccade_stream

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
