"""``type = "sdnn"``: Kheradpisheh et al.'s deep STDP network as a graph stage: events in, features out.

The SDNN answers one static image with one wave of first spikes, so this node cuts the event stream into
segments at the label records already in it (each labelled segment is one image or one saccade), builds a
frame of each segment, runs the network on it, and starts the next image from scratch: **a reset per
segment**. That is the one exception to the design's "no resets" (DESIGN.md, "Resets"), and the config
states it explicitly (``reset = "label"``). A freeze/unfreeze control closes the current segment first,
so an image never straddles a change of learning.

Features go out as spikes of the segment's last event time (channel ``c`` = top-layer map): per map,
``floor(feature / quantum)`` spikes, so a count readout downstream (``readout = "delta"``) sees the feature
vector. Labels pass through unchanged. ``features_out`` also writes every feature vector with its label to
an ``.npz`` file, for the offline linear readout (``benchmarks/sdnn_offline.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from typing_extensions import override

from pipeline.errors import CheckpointError, ConfigError, SpikestreamError
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE
from pipeline.message import EVENTS, FREEZE, LABELS, SPIKES, UNFREEZE, Message, applies_to, spikes_message
from pipeline.node import Node, NodeContext

from .layers import SdnnLayer
from .network import DogParams, SdnnNetwork
from .standardize import RunningStandardizer

ROLE = "features"


@dataclass(frozen=True, kw_only=True)
class SdnnConfig:
    """An SDNN node (Kheradpisheh et al. 2018; docs/sdnn.md)."""

    input: tuple[int, int]
    """[height, width] of the frames (the sensor's size; MNIST: [28, 28])."""
    reset: Literal["label"]
    """Required, and only "label": the network resets at every label record (one wave per segment), the
    one exception to "no resets"; a config must say so."""
    layers: tuple[SdnnLayer, ...] = ()
    """Conv and pool layers bottom up; the last is a conv layer (``nodes.sdnn.layers``)."""
    dog: DogParams = field(default_factory=DogParams)
    """The ON/OFF DoG stage and its intensity-to-latency code (``nodes.sdnn.network.DogParams``)."""
    frame: Literal["first", "count"] = "first"
    """How a segment's events make a frame: "first": a pixel's value is ``1 - (t_first - t_start) /
    span_us`` (inverts a linear latency code, ``code = "latency"``); "count": its event count over the
    segment's largest count (rate codes and event cameras)."""
    span_us: int = 50_000
    """See ``frame = "first"``: the presentation time of the latency code, in µs (>= 1)."""
    features: Literal["potential", "first_spike"] = "potential"
    """The features: the global max of the top layer's final potentials, or per map ``steps`` minus its
    earliest spike step."""
    quantum: float = 1.0
    """Feature units per output spike (> 0); with ``standardize``, standard deviations per output spike."""
    standardize: bool = False
    """Centre and scale each feature by the running mean and standard deviation of the features of the
    training segments seen so far (``|z|`` capped at 8), and send ``z`` on two channels per map: ``c = m`` carries
    ``floor(max(z, 0) / quantum)`` spikes, ``c = maps + m`` ``floor(max(-z, 0) / quantum)`` (spikes cannot be
    negative). The raw features share a large common part that a delta-rule readout follows slowly; the
    classifier then has ``inputs = 2 * maps``. ``features_out`` still writes the raw features."""
    features_out: str = ""
    """Write every feature vector with its label, train flag and phase to this ``.npz`` at the end ("": no)."""
    seed: int = 0
    """Seed of the weight initialisation."""
    learning: bool = True
    """Learn from the start (a checkpoint overrides it)."""

    def __post_init__(self) -> None:
        if self.reset != "label":
            msg = f"reset must be 'label' (one wave per labelled segment), got {self.reset!r}"
            raise ValueError(msg)
        if min(self.input) < 1 or max(self.input) > 65535:
            msg = f"input must be [height, width] in 1 .. 65535, got {list(self.input)}"
            raise ValueError(msg)
        if self.span_us < 1 or not self.quantum > 0:
            msg = f"span_us must be >= 1 and quantum > 0, got {self.span_us}, {self.quantum}"
            raise ValueError(msg)


class SdnnNode(Node):
    """SDNN feature extractor (``type = "sdnn"``)."""

    Config = SdnnConfig
    config: SdnnConfig

    @classmethod
    @override
    def stream_facts(cls, config: SdnnConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        sensor = received.get("sensor")
        h, w = config.input
        if sensor is not None and tuple(sensor) != (w, h):
            msg = f"events of a {sensor[0]}x{sensor[1]} sensor, but input = {list(config.input)}"
            raise ValueError(msg)
        try:
            net = SdnnNetwork(h, w, config.dog, config.layers, seed=0)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        out = {k: v for k, v in received.items() if k not in ("sensor", "shape")}
        return out | {"shape": (net.features * (2 if config.standardize else 1), 1, 1)}

    def __init__(self, name: str, config: SdnnConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.height, self.width = config.input
        self.net = SdnnNetwork(self.height, self.width, config.dog, config.layers, seed=config.seed)
        self.net.learning = config.learning
        self._starts = np.zeros(0, np.int64)  # label times not yet reached by the stream
        self._labels = np.zeros(0, LABEL_DTYPE)  # their records, for features_out
        self._seg: list[np.ndarray] = []  # events of the open segment
        self._seg_label = np.zeros(1, LABEL_DTYPE)[0]
        self._seg_label["t"], self._seg_label["label"] = 0, -1
        self._phase = 0
        self._rows: list[tuple[np.ndarray, int, int, int]] = []  # features_out: features, label, train, phase
        self.standardizer = RunningStandardizer(self.net.features)  #: used with ``standardize``
        self.images = 0
        self.waves_out = 0
        self._dropped = 0

    # -- segments --------------------------------------------------------------------------------------
    def _frame(self, events: np.ndarray) -> np.ndarray:
        frame = np.zeros((self.height, self.width))
        if events.shape[0] == 0:
            return frame
        y, x = events["y"].astype(np.int64), events["x"].astype(np.int64)
        if self.config.frame == "count":
            np.add.at(frame, (y, x), 1.0)
            return np.asarray(frame / frame.max())
        first = np.full((self.height, self.width), np.iinfo(np.int64).max)
        np.minimum.at(first, (y, x), events["t"])
        dt = (first - int(self._seg_label["t"])).astype(np.float64)
        seen = first != np.iinfo(np.int64).max
        frame[seen] = np.clip(1.0 - dt[seen] / self.config.span_us, 0.0, 1.0)
        return frame

    def _close(self) -> list[Message]:
        """Run the wave of the open segment and reset for the next one (the per-segment reset)."""
        if not self._seg:
            return []
        events = np.concatenate(self._seg)
        self._seg = []
        self.images += 1
        out = self.net.present(self._frame(events))
        if out is None:
            return []
        feats = out[0] if self.config.features == "potential" else out[1]
        if self.config.features_out:
            lab = self._seg_label
            self._rows.append((feats.astype(np.float32), int(lab["label"]), int(lab["train"]), self._phase))
        if self.config.standardize:
            counts = self.standardizer.counts(feats, train=bool(self._seg_label["train"]), quantum=self.config.quantum)
        else:
            counts = np.clip(np.floor(feats / self.config.quantum).astype(np.int64), 0, None)
        spikes = np.zeros(int(counts.sum()), SPIKE_DTYPE)
        spikes["t"] = int(events["t"][-1])
        spikes["c"] = np.repeat(np.arange(counts.shape[0]), counts)
        self.waves_out += 1
        return [spikes_message(spikes)] if spikes.shape[0] else []

    def _advance(self) -> list[Message]:
        """Close the open segment and open the next queued one."""
        out = self._close()
        self._seg_label = self._labels[0]
        self._starts, self._labels = self._starts[1:], self._labels[1:]
        return out

    def _events(self, data: np.ndarray) -> list[Message]:
        inside = (data["x"] < self.width) & (data["y"] < self.height)
        if not inside.all():
            self._dropped += int((~inside).sum())
            data = data[inside]
        out: list[Message] = []
        while data.shape[0]:
            if self._starts.shape[0] and data["t"][0] >= self._starts[0]:
                out += self._advance()
                continue
            stop = data.shape[0]
            if self._starts.shape[0]:
                stop = int(np.searchsorted(data["t"], self._starts[0], side="left"))
            self._seg.append(data[:stop].copy())
            data = data[stop:]
        return out

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == LABELS and msg.data is not None:
            self._starts = np.concatenate([self._starts, msg.data["t"].astype(np.int64)])
            self._labels = np.concatenate([self._labels, msg.data])
            return (msg,)
        if msg.kind != EVENTS:
            if msg.kind == SPIKES:
                text = f"nodes.{self.name}: an sdnn node takes events (its own DoG input stage), not spikes"
                raise SpikestreamError(text)
            return (msg,)
        if msg.data is None or not msg.count:
            return ()
        return self._events(msg.data)

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        if msg.command in (FREEZE, UNFREEZE) and applies_to(msg, ROLE):
            out = self._close()
            self.net.learning = msg.command == UNFREEZE
            self._phase += 1
            self.log.info("%s: learning %s", self.name, "on" if self.net.learning else "off")
            return out
        return []

    @override
    async def flush(self) -> Sequence[Message]:
        out = self._close()
        while self._starts.shape[0]:
            out += self._advance()
        self._write_features()
        return out

    def _write_features(self) -> None:
        if not self.config.features_out or not self._rows:
            return
        path = Path(self.config.features_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            features=np.stack([r[0] for r in self._rows]),
            label=np.array([r[1] for r in self._rows], np.int32),
            train=np.array([r[2] for r in self._rows], np.uint8),
            phase=np.array([r[3] for r in self._rows], np.int32),
        )
        self.log.info("%s: %d feature vectors written to %s", self.name, len(self._rows), path)

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        state = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        state["node.learning"] = np.array(self.net.learning)
        state |= {f"node.{k}": v for k, v in self.standardizer.state().items()}
        return state

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        net = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
        try:
            self.net.load_state_dict(net)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        if "node.learning" in state:
            self.net.learning = bool(state["node.learning"])
        if "node.feature_n" in state:
            try:
                self.standardizer.load({k[5:]: v for k, v in state.items() if k.startswith("node.feature_")})
            except ValueError as exc:
                raise CheckpointError(str(exc)) from None

    @override
    def results(self) -> dict[str, Any]:
        learnt = ", ".join(
            f"conv {i}: {int(n)}/{c.images}"
            for i, (n, c) in enumerate(zip(self.net.learnt, self.net.convs, strict=True))
        )
        return {
            "sdnn_images": self.images,
            "sdnn_feature_waves": self.waves_out,
            "sdnn_learnt_images": self.net.learnt.tolist(),
            "sdnn_dropped_events": self._dropped,
            "summary": [f"sdnn: {self.images:,} images, learning images per layer ({learnt})"],
        }
