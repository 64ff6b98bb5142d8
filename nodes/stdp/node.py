"""The STDP feature extractor as a graph stage: events (or spikes) in, top-layer spikes out.

Input events become input spikes with channel ``c = p`` for a two-channel (ON/OFF) input and ``c = 0`` for
a one-channel input. Labels, predictions and metrics pass through unchanged and in order, so a classifier
downstream sees labels exactly where they were in the stream. ``freeze``/``unfreeze`` control messages
(scope "features" or none) switch learning off/on; inference runs either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.errors import CheckpointError, ConfigError, SpikestreamError
from pipeline.events import SPIKE_DTYPE
from pipeline.message import EVENTS, FREEZE, SPIKES, UNFREEZE, Message, applies_to, spikes_message
from pipeline.node import Node, NodeContext

from .layers import LayerParams, output_shape
from .network import Network

ROLE = "features"


@dataclass(frozen=True, kw_only=True)
class StdpConfig:
    """The network of a ``stdp`` node (thesis 3.2, Table 3.1 / section 3.3.2)."""

    input: tuple[int, int, int]
    """[channels, height, width] of the input layer (N-MNIST: [2, 34, 34]; MNIST: [1, 28, 28]). Events
    (ON/OFF) need 1 or 2 channels; a node that continues the network of another ``stdp`` node (the layers
    split over two processes, to use two cores) takes that node's output shape, e.g. [16, 15, 15]."""
    layers: tuple[LayerParams, ...] = ()
    """The layers bottom up, each a table whose ``type`` ("conv", "pool" or "fc") picks its fields; see
    ``nodes.stdp.layers`` for each field's meaning, unit, range and source."""
    seed: int = 0
    """Seed of the weight initialisation (numpy ``default_rng``; the same seed gives the same weights)."""
    learning: bool = True
    """Learn from the start (a checkpoint overrides it)."""

    def __post_init__(self) -> None:
        c, h, w = self.input
        if c < 1 or h < 1 or w < 1:
            msg = f"input must be [channels, height, width], all >= 1, got {list(self.input)}"
            raise ValueError(msg)
        if not self.layers:
            msg = "layers must list at least one layer"
            raise ValueError(msg)


class StdpNode(Node):
    """Online STDP feature extractor (``type = "stdp"``)."""

    Config = StdpConfig
    config: StdpConfig

    @classmethod
    @override
    def stream_facts(cls, config: StdpConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        _, h, w = config.input
        sensor = received.get("sensor")
        if sensor is not None and tuple(sensor) != (w, h):
            msg = (
                f"events of a {sensor[0]}x{sensor[1]} sensor, but input = {list(config.input)}: put an encoder "
                "(crop/downsample) in front, or change input"
            )
            raise ValueError(msg)
        shape = received.get("shape")
        if shape is not None and tuple(shape) != tuple(config.input):
            msg = f"spikes of shape {list(shape)}, but input = {list(config.input)}"
            raise ValueError(msg)
        out = {k: v for k, v in received.items() if k not in ("sensor", "shape")}
        try:
            shape = output_shape(config.input, config.layers)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return out | {"shape": shape}

    def __init__(self, name: str, config: StdpConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        # a layer that does not fit its input is a ValueError naming it; the runner reports it as the
        # node's config error
        self.net = Network(config.input, config.layers, seed=config.seed)
        self.net.learning = config.learning
        self.channels, self.height, self.width = config.input
        self._dropped = 0
        # Load the compiled kernels now (an empty batch changes nothing): on the first live batch this
        # took ~0.3 s, long enough for a camera started with the graph to drop events.
        self.net.process(np.zeros(0, SPIKE_DTYPE))

    def _input_spikes(self, msg: Message) -> np.ndarray:
        data = msg.data
        assert data is not None
        if msg.kind == SPIKES:
            return data
        if self.channels > 2:
            text = (
                f"nodes.{self.name} has {self.channels} input channels and takes spikes from another stdp node; "
                f"events (ON/OFF polarity) need input = [1 or 2, height, width]"
            )
            raise SpikestreamError(text)
        if msg.width is not None and msg.height is not None and (msg.width, msg.height) != (self.width, self.height):
            text = (
                f"events of a {msg.width}x{msg.height} sensor do not fit the network input "
                f"{self.width}x{self.height}: put an encoder (crop/downsample) in front, or set nodes.{self.name}.input"
            )
            raise SpikestreamError(text)
        spikes = np.empty(data.shape[0], dtype=SPIKE_DTYPE)
        spikes["t"] = data["t"]
        spikes["x"] = data["x"]
        spikes["y"] = data["y"]
        spikes["c"] = data["p"] if self.channels == 2 else 0
        inside = (spikes["x"] < self.width) & (spikes["y"] < self.height)
        if not inside.all():
            self._dropped += int((~inside).sum())
            spikes = spikes[inside]
        return spikes

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind not in (EVENTS, SPIKES):
            return (msg,)
        if not msg.count:
            return ()
        out = self.net.process(self._input_spikes(msg))
        return (spikes_message(out),) if out.shape[0] else ()

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        if msg.command in (FREEZE, UNFREEZE) and applies_to(msg, ROLE):
            self.net.learning = msg.command == UNFREEZE
            self.log.info("%s: learning %s", self.name, "on" if self.net.learning else "off")
        return ()

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        state = dict(self.net.state_dict())
        state["node.learning"] = np.array(self.net.learning)
        layers = [{"type": p.type} | asdict(p) for p in self.config.layers]  # every field, defaults too
        state["node.config"] = np.array(json.dumps({"input": list(self.config.input), "layers": layers}))
        state["node.dropped"] = np.array(self._dropped)
        return state

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        state = dict(state)
        learning = state.pop("node.learning", None)
        dropped = state.pop("node.dropped", None)
        state.pop("node.config", None)
        try:
            self.net.load_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        if learning is not None:
            self.net.learning = bool(learning)
        if dropped is not None:
            self._dropped = int(dropped)

    @override
    def results(self) -> dict[str, Any]:
        return {"stdp_layers": self.net.counters(), "stdp_dropped_events": self._dropped}
