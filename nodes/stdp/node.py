"""The STDP feature extractor as a graph stage: events (or spikes) in, top-layer spikes out.

Input events become input spikes with channel ``c = p`` for a two-channel (ON/OFF) input and ``c = 0`` for
a one-channel input. Labels, predictions and metrics pass through unchanged and in order, so a classifier
downstream sees labels exactly where they were in the stream. ``freeze``/``unfreeze`` control messages
(scope "features" or none) switch learning off/on; inference runs either way.

With ``threads`` > 1 the layers run as a pipeline over threads (``nodes.stdp.pipelined``): ``process``
hands a batch in and returns the outputs already finished; the rest come out through the background hooks
(``background_pending``/``background_ready``), in input order, with labels in their places. ``control``,
``snapshot``, ``flush`` and ``results`` wait for the pipeline to drain first, so that every output before
a control message goes out before it and state is read at a consistent position.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from .pipelined import PipelinedNetwork, group_bounds
from .split import default_split
from .view import network_view

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
    threads: int = 1
    """Threads the layers run in, in 1 .. the number of layers. 1: layer by layer in the node's own thread.
    N > 1: N contiguous groups of layers, one thread each, as a pipeline (while the upper group runs one
    batch, the lower one runs the next), so that one node uses up to N cores. Results are identical
    (spike for spike, weight for weight); it pays when the node has cores to spare and batches are not
    tiny (docs/edge.md, "threads")."""
    split: tuple[int, ...] = ()
    """With ``threads`` > 1: the layer indices (from 0) where the second, third ... group starts, increasing,
    ``threads - 1`` of them; e.g. [2] runs layers 0-1 in one thread and the rest in another. Empty: chosen
    by a cost estimate that balances the groups (``nodes.stdp.split``)."""

    def __post_init__(self) -> None:
        c, h, w = self.input
        if c < 1 or h < 1 or w < 1:
            msg = f"input must be [channels, height, width], all >= 1, got {list(self.input)}"
            raise ValueError(msg)
        if not self.layers:
            msg = "layers must list at least one layer"
            raise ValueError(msg)
        if not 1 <= self.threads <= len(self.layers):
            msg = f"threads must be in 1 .. {len(self.layers)} (one group of layers per thread), got {self.threads}"
            raise ValueError(msg)
        if self.split:
            if len(self.split) != self.threads - 1:
                msg = (
                    f"split {list(self.split)} must give {self.threads - 1} layer indices for threads = {self.threads}"
                )
                raise ValueError(msg)
            group_bounds(len(self.layers), self.split)

    @property
    def group_starts(self) -> tuple[int, ...]:
        """Where the second, third ... group of layers starts: ``split``, or the cost estimate's choice."""
        return self.split or default_split(self.input, self.layers, self.threads)


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
        # threads > 1: the pipeline, started on the first batch and stopped by stop(); its last worker wakes
        # the event loop that waits for it (bound anew when a later call runs in another loop)
        self._pipe: PipelinedNetwork[Message] | None = None
        self._waker: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._error: BaseException | None = None  # a worker's, met while draining for control()

    @override
    def warm(self) -> None:
        # on the first live batch this took ~0.3 s, long enough for a camera started with the graph to drop
        # events; an empty batch changes nothing
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
        if self.config.threads > 1:
            return await self._process_pipelined(msg)
        if msg.kind not in (EVENTS, SPIKES):
            return (msg,)
        if not msg.count:
            return ()
        out = self.net.process(self._input_spikes(msg))
        return (spikes_message(out),) if out.shape[0] else ()

    @override
    def control(self, msg: Message) -> Sequence[Message]:
        out = self._drain_now()
        if msg.command in (FREEZE, UNFREEZE) and applies_to(msg, ROLE):
            self._set_learning(msg.command == UNFREEZE)
            self.log.info("%s: learning %s", self.name, "on" if self.net.learning else "off")
        return out

    # -- threads > 1 -------------------------------------------------------------------------------------
    def _pipeline(self) -> PipelinedNetwork[Message]:
        if self._pipe is None:
            self._pipe = PipelinedNetwork(self.net, self.config.group_starts, on_output=self._wake)
        return self._pipe

    def _wake(self) -> None:
        """Called in the last worker's thread for every item out: wakes the loop that may be waiting."""
        waker = self._waker
        if waker is not None:
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits on it any more
                waker[0].call_soon_threadsafe(waker[1].set)

    def _event(self) -> asyncio.Event:
        """The event ``_wake`` sets, of the running loop: a waiter clears it, checks, then waits on it."""
        loop = asyncio.get_running_loop()
        if self._waker is None or self._waker[0] is not loop:
            self._waker = (loop, asyncio.Event())
        return self._waker[1]

    async def _process_pipelined(self, msg: Message) -> Sequence[Message]:
        pipe = self._pipeline()
        if msg.kind not in (EVENTS, SPIKES):
            if not self.background_pending():
                return (msg,)  # nothing before it in the pipeline: straight on
            pipe.pass_on(msg)
            return self._emit()
        if not msg.count:
            return self._emit()
        spikes = self._input_spikes(msg)
        while pipe.full():  # room for one more batch: a bounded number in flight
            event = self._event()
            event.clear()
            if pipe.full():
                await event.wait()
        pipe.submit(spikes, msg)
        return self._emit()

    def _emit(self) -> list[Message]:
        """The pipeline's finished outputs as messages, in order; a worker's error is raised in its place."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._messages(self._pipe.take()) if self._pipe is not None else []

    @staticmethod
    def _messages(items: Sequence[tuple[Message, np.ndarray | None]]) -> list[Message]:
        """Taken items as the messages to send: a label (or other message passed on) as it came, a batch's
        output spikes (none when it had none) with the ``created_ns`` of the message it came from."""
        out: list[Message] = []
        for tag, spikes in items:
            if spikes is None:
                out.append(tag)
            elif spikes.shape[0]:
                out.append(Message(SPIKES, spikes, created_ns=tag.created_ns))
        return out

    def _drain_now(self) -> list[Message]:
        """Wait (blocking) until the pipeline is empty and return every output; a worker's error is kept
        for the next ``process``/``background_ready``/``flush`` call, so that no output after it is held back."""
        if self._pipe is None:
            return []
        self._pipe.wait()
        out: list[Message] = []
        while self._pipe.has_output():
            try:
                out += self._messages(self._pipe.take())
            except Exception as exc:  # noqa: BLE001 - kept and raised by the next call that can report it
                if self._error is None:
                    self._error = exc
                else:
                    self.log.error("%s: a further worker error while draining: %s", self.name, exc)
        return out

    def _set_learning(self, on: bool) -> None:
        if self._pipe is not None:
            self._pipe.set_learning(on)
        else:
            self.net.learning = on

    @override
    def background_pending(self) -> bool:
        pipe = self._pipe
        return pipe is not None and (self._error is not None or pipe.in_flight() > 0 or pipe.has_output())

    @override
    async def background_ready(self) -> Sequence[Message]:
        while self.background_pending():
            out = self._emit()
            if out:
                return out
            event = self._event()
            event.clear()
            if self._pipe is not None and not self._pipe.has_output() and self._pipe.in_flight() > 0:
                await event.wait()
        return ()

    @override
    async def flush(self) -> Sequence[Message]:
        out: list[Message] = []
        while self.background_pending():
            out += await self.background_ready()
        return out

    @override
    async def stop(self) -> None:
        if self._pipe is not None:
            pipe, self._pipe = self._pipe, None
            await asyncio.get_running_loop().run_in_executor(None, pipe.close)

    @override
    def snapshot(self) -> dict[str, np.ndarray]:
        if self._pipe is not None:
            self._pipe.wait()
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
            if self._pipe is not None:
                self._pipe.load_state_dict(state)
            else:
                self.net.load_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        if learning is not None:
            self._set_learning(bool(learning))
        if dropped is not None:
            self._dropped = int(dropped)

    @override
    def watch(self, *, full: bool) -> dict[str, Any]:
        return network_view(self.net, full=full)  # (read while the pipeline runs: a display, not a state)

    @override
    def results(self) -> dict[str, Any]:
        if self._pipe is not None:
            self._pipe.wait()
        layers = self.net.counters()
        return {
            "stdp_layers": layers,
            "stdp_dropped_events": self._dropped,
            "summary": [maps_line(layers)],
        }


def maps_line(layers: list[dict[str, int | str]]) -> str:
    """``feature maps in use (learned): conv 14/16, conv 30/32, fc 201/256`` from ``Network.counters()``:
    how much of the network the stream has taught so far."""
    used = [f"{c['kind']} {c['maps_learned']}/{c['maps']}" for c in layers if "maps" in c]
    return "feature maps in use (learned): " + ", ".join(used)
