"""``type = "mnist"``: static MNIST images, rate encoded (thesis 3.3.1) or latency encoded (snnTorch paper),
as one labelled stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

import numpy as np
from typing_extensions import override

from nodes.sources.phased import Chunk, PhasedSource, StreamParams, existing_data_path
from pipeline.node import NodeContext

if TYPE_CHECKING:
    from nodes.sources.synthesis.latency import LatencyEncoderParams


@dataclass(frozen=True, kw_only=True)
class MnistConfig(StreamParams):
    """MNIST digits as spike trains (thesis 3.3.1).

    ``root``: folder with the four IDX files (relative paths resolve against ``SPIKESTREAM_DATA``).
    ``phases`` default: one training pass over the 60,000, then the 10,000 test images with learning off;
    ``seed`` also drives the spike noise. ``chunk``: images encoded at a time. ``max_rate_hz``,
    ``duration_us``, ``rate_std``: the encoder (``nodes.sources.synthesis.rate.RateEncoderParams``; defaults give
    ~1,100-3,400 events per image).
    ``code``: "rate" (the thesis's) or "latency" (one spike per pixel at its time to first spike,
    ``nodes.sources.synthesis.latency``: ``latency`` "linear" or "log", ``latency_threshold``,
    ``latency_normalize``, ``latency_tau_us``; about 150 events per image). An option of the other code is
    refused, so that a config never carries a setting that does nothing."""

    root: str = "mnist"
    chunk: int = 250
    max_rate_hz: float = 200.0
    duration_us: int = 50_000
    rate_std: float = 0.05
    code: Literal["rate", "latency"] = "rate"
    latency: Literal["linear", "log"] = "linear"
    latency_threshold: float = 0.01
    latency_normalize: bool = True
    latency_tau_us: float = 10_000.0

    @override
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.code not in ("rate", "latency"):
            msg = f"code must be 'rate' or 'latency', got {self.code!r}"
            raise ValueError(msg)
        other = ("latency",) if self.code == "rate" else ("max_rate_hz", "rate_std")
        base = MnistConfig.__dataclass_fields__
        for f in fields(self):
            if f.name.startswith(other) and getattr(self, f.name) != base[f.name].default:
                msg = f"{f.name} is an option of the other code, not of code = {self.code!r}"
                raise ValueError(msg)
        self.latency_params()  # validates the latency options

    def latency_params(self) -> LatencyEncoderParams:
        """The latency encoder's parameters."""
        from nodes.sources.synthesis.latency import LatencyEncoderParams

        return LatencyEncoderParams(
            kind=self.latency,
            duration_us=self.duration_us,
            threshold=self.latency_threshold,
            normalize=self.latency_normalize,
            tau_us=self.latency_tau_us,
        )


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
        if self.config.code == "latency":
            yield from self._latency_chunks(images, labels, order, t0, train)
            return
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

    def _latency_chunks(
        self, images: np.ndarray, labels: np.ndarray, order: np.ndarray, t0: int, train: bool
    ) -> Iterator[Chunk]:
        from nodes.sources.synthesis.latency import latency_stream

        params = self.config.latency_params()
        step = self.config.chunk
        for start in range(0, order.shape[0], step):
            idx = order[start : start + step]
            events, recs = latency_stream(
                images[idx],
                labels[idx].astype(np.int64),
                train=train,
                params=params,
                t0=t0 + start * params.duration_us,
            )
            self._presented += idx.shape[0]
            yield events, recs, int(idx.shape[0])
