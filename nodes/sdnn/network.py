"""An SDNN as state plus one call per image: DoG, intensity to latency, the layers' wave, STDP, features.

Learning is layer by layer (Kheradpisheh et al. 2018, section 2.3): the first conv layer learns from the
first ``images`` learning images, then the next conv layer from its own ``images``, and so on; while a
layer learns, the wave stops at it (the layers above would only see a changing input). When every layer is
done (or learning is off) the whole wave runs and the features are the global max of the top layer's final
potentials (its threshold only decides its spikes, not the features: the paper's infinite threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import kernel
from .layers import SdnnConv, SdnnLayer, layer_shapes


@dataclass(frozen=True, kw_only=True)
class DogParams:
    """The on/off difference-of-Gaussians input stage and its latency code (the paper: 7x7, sigmas 1 and 2)."""

    #: kernel side, odd
    size: int = 7
    #: centre and surround standard deviations in pixels, ``sigma_center < sigma_surround``
    sigma_center: float = 1.0
    sigma_surround: float = 2.0
    #: responses at or below it do not spike, in units of the kernel's (positive) peak times a unit frame
    threshold: float = 0.1
    #: time steps of a wave (the strongest responses spike at step 0)
    steps: int = 15

    def __post_init__(self) -> None:
        if self.size < 1 or self.size % 2 == 0:
            msg = f"DoG size must be odd and >= 1, got {self.size}"
            raise ValueError(msg)
        if not 0 < self.sigma_center < self.sigma_surround:
            msg = f"DoG needs 0 < sigma_center < sigma_surround, got {self.sigma_center}, {self.sigma_surround}"
            raise ValueError(msg)
        if not self.threshold >= 0 or not 1 <= self.steps <= 10_000:
            msg = f"DoG needs threshold >= 0 and steps in 1 .. 10000, got {self.threshold}, {self.steps}"
            raise ValueError(msg)


def dog_kernel(params: DogParams) -> np.ndarray:
    """Centre minus surround Gaussian (each summing to 1), made zero-sum and scaled to a peak of 1."""
    r = np.arange(params.size) - params.size // 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    g1 = np.exp(-d2 / (2 * params.sigma_center**2))
    g2 = np.exp(-d2 / (2 * params.sigma_surround**2))
    dog = g1 / g1.sum() - g2 / g2.sum()
    dog -= dog.mean()
    return np.ascontiguousarray(dog / dog.max())


def pad_wave(times: np.ndarray, pad: int, n_steps: int) -> np.ndarray:
    """``times`` ``[C, H, W]`` surrounded by ``pad`` rows and columns of inputs that never spike."""
    return np.pad(times, ((0, 0), (pad, pad), (pad, pad)), constant_values=n_steps)


class SdnnNetwork:
    """Weights, learning progress and the per-image wave of an SDNN on ``height`` x ``width`` frames."""

    def __init__(self, height: int, width: int, dog: DogParams, layers: Sequence[SdnnLayer], seed: int) -> None:
        self.height, self.width = height, width
        self.dog = dog
        self.layers = tuple(layers)
        self.shapes = layer_shapes((2, height, width), self.layers)
        self.kern = dog_kernel(dog)
        rng = np.random.default_rng(seed)
        self.weights: list[np.ndarray] = []
        in_c = 2
        for layer, shape in zip(self.layers, self.shapes, strict=True):
            if isinstance(layer, SdnnConv):
                w = rng.normal(layer.w_mean, layer.w_std, (layer.maps, in_c, layer.kernel, layer.kernel))
                self.weights.append(np.clip(w, 0.0, 1.0))
            in_c = shape[0]
        self.convs = [layer for layer in self.layers if isinstance(layer, SdnnConv)]
        #: learning images seen by each conv layer
        self.learnt = np.zeros(len(self.convs), np.int64)
        self.learning = True

    @property
    def features(self) -> int:
        """Length of the feature vector: the top conv layer's maps."""
        return self.convs[-1].maps

    def learning_layer(self) -> int:
        """Index (among the conv layers) of the layer that learns from the next image; -1 when none does."""
        if not self.learning:
            return -1
        for i, layer in enumerate(self.convs):
            if self.learnt[i] < layer.images:
                return i
        return -1

    def input_wave(self, frame: np.ndarray) -> np.ndarray:
        """First-spike steps ``[2, H, W]`` of the ON/OFF DoG responses to ``frame`` (float, ``[H, W]``)."""
        frame = np.asarray(frame, dtype=np.float64)
        if frame.shape != (self.height, self.width) or not np.isfinite(frame).all():
            msg = f"frame must be finite with shape {(self.height, self.width)}, got {frame.shape}"
            raise ValueError(msg)
        dog = kernel.dog_filter(np.ascontiguousarray(frame), self.kern)
        return kernel.intensity_to_latency(dog, float(self.dog.threshold), int(self.dog.steps))

    def rates(self, i: int) -> tuple[float, float]:
        """The STDP steps of conv layer ``i`` now (its schedule applied to the images it has learnt from)."""
        layer = self.convs[i]
        grow = layer.rate_growth ** (int(self.learnt[i]) // layer.rate_every)
        a_plus = min(layer.a_plus * grow, layer.a_plus_max)
        return a_plus, layer.a_minus * a_plus / layer.a_plus

    def present(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """One image: learn if a layer is learning (then ``None``), else the features: per top-layer map, the
        global max of the final potentials, and ``steps`` minus its earliest spike step (0: no spike)."""
        steps = int(self.dog.steps)
        times = self.input_wave(frame)
        learner = self.learning_layer()
        ci = 0
        final = np.zeros((0, 0, 0))
        out_t = np.zeros((0, 0, 0), np.int32)
        for layer in self.layers:
            if isinstance(layer, SdnnConv):
                w = self.weights[ci]
                if layer.pad:
                    times = pad_wave(times, int(layer.pad), steps)
                out_t, at_spike, final = kernel.conv_wave(times, w, float(layer.threshold), steps)
                if ci == learner:
                    win = kernel.select_winners(out_t, at_spike, int(layer.winners), int(layer.radius), steps)
                    a_plus, a_minus = self.rates(ci)
                    kernel.stdp_update(w, times, out_t, win, a_plus, a_minus)
                    self.learnt[ci] += 1
                    return None
                times = out_t
                ci += 1
            else:
                times = kernel.pool_wave(times, int(layer.size), int(layer.stride))
        first = steps - out_t.reshape(out_t.shape[0], -1).min(axis=1)
        return kernel.global_max(final), first.astype(np.float64)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights and learning progress, for a checkpoint."""
        state = {f"w{i}": w.copy() for i, w in enumerate(self.weights)}
        state["learnt"] = self.learnt.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore ``state_dict()``; a state of another architecture is a ValueError saying what differs."""
        for i, w in enumerate(self.weights):
            got = state.get(f"w{i}")
            if got is None or got.shape != w.shape:
                msg = f"conv layer {i}: weights of shape {None if got is None else got.shape}, expected {w.shape}"
                raise ValueError(msg)
        if state.get("learnt", np.zeros(0)).shape != self.learnt.shape:
            msg = "the learning progress does not match the number of conv layers"
            raise ValueError(msg)
        self.weights = [np.array(state[f"w{i}"], dtype=np.float64) for i in range(len(self.weights))]
        self.learnt = np.array(state["learnt"], dtype=np.int64)
