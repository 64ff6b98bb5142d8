"""Encoder stage: camera events in sensor geometry → the network's input layer (channels x height x width).

Crop, optional noise filters (background activity, refractory), downsampling and the ON/OFF channel split
of ``EventTransform``. The sensor size is taken from the incoming messages (or ``sensor`` in the config);
the output size is the network's input, declared here as ``output = [channels, height, width]`` and checked
by the STDP node on every message (a mismatch is a clear error there). What the filters remove is counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from typing_extensions import override

from pipeline.errors import CheckpointError, SpikestreamError
from pipeline.events import EVENT_DTYPE
from pipeline.message import EVENTS, Message, events_message
from pipeline.node import Node, NodeContext

from .events import EventTransform, TransformParams


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """``output``: [channels (1 or 2), height, width] of the network input. ``sensor``: [width, height] of
    the camera (default: from the messages' headers). ``crop``: [x0, y0, w, h] window of the sensor
    (default: all). ``merge_polarities``: with one channel, ON and OFF both count (else ON only).
    ``ba_window_us``: background-activity filter window, µs (0 = off; 2,000-10,000 for a DVS).
    ``refractory_us``: refractory period per output pixel, µs (0 = off)."""

    output: tuple[int, int, int]
    sensor: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    merge_polarities: bool = True
    ba_window_us: int = 0
    refractory_us: int = 0


class EncoderNode(Node):
    """``type = "encoder"``."""

    Config = EncoderConfig
    config: EncoderConfig

    @classmethod
    @override
    def stream_facts(cls, config: EncoderConfig, received: Mapping[str, Any]) -> Mapping[str, Any]:
        _, h, w = config.output
        return {**received, "sensor": (w, h)}  # any sensor in: cropped and downsampled to the output

    def __init__(self, name: str, config: EncoderConfig, context: NodeContext) -> None:
        super().__init__(name, config, context)
        self.transform: EventTransform | None = None
        self._pending_state: dict[str, np.ndarray] | None = None
        if config.sensor is not None:
            self._make(*config.sensor)

    @override
    def warm(self) -> None:
        """A throw-away transform loads the kernel: the sensor size may come only with the first message."""
        _, h, w = self.config.output
        EventTransform(self._params(w, h, crop=None))(np.zeros(0, EVENT_DTYPE))

    def _params(self, width: int, height: int, crop: tuple[int, int, int, int] | None) -> TransformParams:
        c, h, w = self.config.output
        try:
            return TransformParams(
                in_width=width,
                in_height=height,
                out_width=w,
                out_height=h,
                crop=crop,
                channels=c,
                merge_polarities=self.config.merge_polarities,
                ba_window_us=self.config.ba_window_us,
                refractory_us=self.config.refractory_us,
            )
        except ValueError as exc:
            msg = f"nodes.{self.name}: {exc}"
            raise SpikestreamError(msg) from None

    def _make(self, width: int, height: int) -> EventTransform:
        self.transform = EventTransform(self._params(width, height, self.config.crop))
        if self._pending_state is not None:
            self.transform.load_state_dict(self._pending_state)
            self._pending_state = None
        return self.transform

    @override
    async def process(self, msg: Message) -> Sequence[Message]:
        if msg.kind != EVENTS or msg.data is None:
            return (msg,)
        transform = self.transform
        if transform is None:
            if msg.width is None or msg.height is None:
                text = f"events from {msg.stream!r} do not say their sensor size: set nodes.{self.name}.sensor"
                raise SpikestreamError(text)
            transform = self._make(msg.width, msg.height)
        elif msg.width is not None and (msg.width, msg.height) != (
            transform.params.in_width,
            transform.params.in_height,
        ):
            text = (
                f"events from {msg.stream!r} come from a {msg.width}x{msg.height} sensor, "
                f"but this encoder was set up for {transform.params.in_width}x{transform.params.in_height}"
            )
            raise SpikestreamError(text)
        out = transform(msg.data)
        _, h, w = self.config.output
        return (events_message(out, w, h),) if out.shape[0] else ()

    @override
    def snapshot(self) -> dict[str, np.ndarray] | None:
        if self.transform is None:
            return None
        state = dict(self.transform.state_dict())
        state["node.sensor"] = np.array([self.transform.params.in_width, self.transform.params.in_height])
        return state

    @override
    def restore(self, state: dict[str, np.ndarray]) -> None:
        state = dict(state)
        sensor = state.pop("node.sensor", None)
        if sensor is None:
            msg = "encoder checkpoint lacks its sensor size"
            raise CheckpointError(msg)
        self._pending_state = state
        try:
            self._make(int(sensor[0]), int(sensor[1]))
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None

    @override
    def results(self) -> dict[str, Any]:
        return {"encoder": self.transform.counters() if self.transform is not None else {}}
