"""``type = "decolle"``: DECOLLE-style hidden layers as a graph stage: spikes (or events) in, spikes out.

The node takes the encoder's events or an stdp node's spikes (input ``[channels, height, width]``; input
channel ``(c * height + y) * width + x``), runs them through its layers (``nodes.decolle.network``), each
learning online from its own fixed random readout and the current label, and sends the top layer's spikes
on (an fc layer's: ``c`` = neuron, ``x = y = 0``; a conv layer's: ``c`` = map, ``x``, ``y`` its position),
so a readout can sit on top (``type = "classifier"``, e.g.
``readout = "delta"`` or ``"eprop"``). Labels are consumed for learning and passed on unchanged. Every
label record brings the layers to rest (the config must say ``reset = "label"``, the design's documented
exception to "no resets", as the SDNN's). ``freeze``/``unfreeze`` control (scope "features" or none)
switch learning off/on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from typing_extensions import override

from pipeline.errors import CheckpointError, SpikestreamError
from pipeline.events import SPIKE_DTYPE
from pipeline.message import EVENTS, FREEZE, LABELS, SPIKES, UNFREEZE, Message, applies_to, spikes_message
from pipeline.node import Node, NodeContext

from .network import DecolleLayer, DecolleNetwork, DecolleParams, layer_shapes

ROLE = "features"


@dataclass(frozen=True, kw_only=True)
class DecolleConfig:
    """A DECOLLE node (docs/experiments/decolle.md)."""

    input: tuple[int, int, int]
    """[channels, height, width] of the spikes in (events: channels 1 (polarities merged) or 2 (ON/OFF))."""
    reset: Literal["label"]
    """Required, and only "label": every label record brings the layers to rest; a config must say so."""
    layers: tuple[DecolleLayer, ...] = (DecolleLayer(),)
    """Layers bottom up, fc or conv (``nodes.decolle.network.DecolleLayer``)."""
    classes: int = 10
    """Number of classes of the labels (rows of every layer's local readout)."""
    seed: int = 0
    """Seed of the weights and of the fixed local readouts."""
    learning: bool = True
    """Learn from the start (a checkpoint overrides it)."""

    def __post_init__(self) -> None:
        if self.reset != "label":
            msg = f"reset must be 'label' (the layers rest at every labelled segment), got {self.reset!r}"
            raise ValueError(msg)
        if min(self.input) < 1 or max(self.input) > 65535:
            msg = f"input must be [channels, height, width] in 1 .. 65535, got {list(self.input)}"
            raise ValueError(msg)

    def params(self) -> DecolleParams:
        """The network's parameters."""
        c, h, w = self.input
        return DecolleParams(
            n_inputs=c * h * w, n_classes=self.classes, layers=self.layers, seed=self.seed, input_shape=self.input
        )


class DecolleNode(Node):
    """DECOLLE hidden layers (``type = "decolle"``)."""

    Config = DecolleConfig
    config: DecolleConfig

    @classmethod
    @override
    def stream_facts(cls, config: DecolleConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        _, h, w = config.input
        sensor = received.get("sensor")
        if sensor is not None and tuple(sensor) != (w, h):
            msg = f"events of a {sensor[0]}x{sensor[1]} sensor, but input = {list(config.input)}"
            raise ValueError(msg)
        shape = received.get("shape")
        if shape is not None and tuple(shape) != tuple(config.input):
            msg = f"spikes of shape {list(shape)}, but input = {list(config.input)}"
            raise ValueError(msg)
        classes = received.get("classes")
        if classes is not None and classes != config.classes:
            msg = f"labels of {classes} classes, but classes = {config.classes}"
            raise ValueError(msg)
        out = {k: v for k, v in received.items() if k not in ("sensor", "shape")}
        return out | {"shape": layer_shapes(config.input, config.layers)[-1]}

    def __init__(self, name: str, config: DecolleConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.net = DecolleNetwork(config.params())
        if not config.learning:
            self.net.freeze()
        self.channels, self.height, self.width = config.input
        self._dropped = 0

    @override
    def warm(self) -> None:
        """A throw-away network loads the kernels (one input event would change the node's own)."""
        probe = DecolleNetwork(DecolleParams(n_inputs=1, n_classes=1, layers=(DecolleLayer(neurons=1),)))
        probe.process(np.zeros(1, SPIKE_DTYPE))
        probe.flush()

    def _input(self, msg: Message) -> np.ndarray:
        data = msg.data
        assert data is not None
        if msg.kind == EVENTS:
            if self.channels > 2:
                text = f"nodes.{self.name} has {self.channels} input channels: events need input = [1 or 2, h, w]"
                raise SpikestreamError(text)
            chan = data["p"].astype(np.int64) if self.channels == 2 else np.zeros(data.shape[0], np.int64)
        else:
            chan = data["c"].astype(np.int64)
        x, y = data["x"].astype(np.int64), data["y"].astype(np.int64)
        inside = (x < self.width) & (y < self.height) & (chan < self.channels)
        if not inside.all():
            self._dropped += int((~inside).sum())
        spikes = np.zeros(int(inside.sum()), SPIKE_DTYPE)
        spikes["t"] = data["t"][inside]
        spikes["c"] = ((chan * self.height + y) * self.width + x)[inside]
        return spikes

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind == LABELS and msg.data is not None:
            self.net.add_labels(msg.data)
            return (msg,)
        if msg.kind not in (EVENTS, SPIKES):
            return (msg,)
        if msg.data is None or not msg.count:
            return ()
        out = self.net.process(self._input(msg))
        if not out.shape[0]:
            return ()
        _, h, w = self.net.output_shape  # neuron (m * h + y) * w + x of the top layer as (c, y, x)
        flat = out["c"].astype(np.int64)
        out["c"], out["y"], out["x"] = flat // (h * w), (flat // w) % h, flat % w
        return (spikes_message(out),)

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        if msg.command in (FREEZE, UNFREEZE) and applies_to(msg, ROLE):
            if msg.command == FREEZE:
                self.net.freeze()
            else:
                self.net.unfreeze()
            self.log.info("%s: learning %s", self.name, "on" if self.net.learning else "off")
        return ()

    @override
    async def flush(self) -> Sequence[Message]:
        if not self.interrupted:  # the stream goes on after a resume: keep the queued labels
            self.net.flush()
        return ()

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        return {f"net.{k}": v for k, v in self.net.state_dict().items()}

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        try:
            self.net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        except (ValueError, KeyError) as exc:
            raise CheckpointError(str(exc)) from None

    @override
    def watch(self, *, full: bool) -> dict[str, Any]:
        return {"learning": bool(self.net.learning)}

    @override
    def results(self) -> dict[str, Any]:
        counters = self.net.counters
        rates = ", ".join(
            f"layer {i}: {n_in:,} in, {n_out:,} out"
            for i, (n_in, n_out) in enumerate(zip(counters["inputs"], counters["outputs"], strict=True))
        )
        return {
            "decolle": counters | {"dropped": self._dropped},
            "summary": [f"decolle: {counters['segments']:,} segments; spikes {rates}"],
        }
