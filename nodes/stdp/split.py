"""Where to cut a network into layer groups for ``threads`` (``nodes.stdp.pipelined``): a cost estimate.

A pipeline runs as fast as its slowest group, so the groups should cost about the same. What a layer
costs depends on the data (how many spikes reach it), so this is an estimate from the configuration
alone, calibrated on what ``benchmarks/bench_stdp.py`` measured per layer:

* a weighted layer costs, per input spike it receives, a fixed part (``PER_INPUT``: the candidate
  bookkeeping, the per-row loop set-up) plus one unit per neuron the spike reaches (``KH*KW*M``, or ``N``
  for a fully connected layer); pooling costs next to nothing (one numpy pass);
* the spikes a layer receives per network input: 1 for the first layer; a weighted layer sends about
  ``reach * w_init_mean / th_inf`` spikes per input (the weight one input adds, over the threshold),
  divided by the maps that one inference spike inhibits (``r_inf >= 0``: all ``M`` at its position;
  ``wta_inf``: all ``N``).

On the N-MNIST network of configs/nmnist.toml this gives conv1 : conv2 : fc = 5.4k : 20k : 6k units per
network input event; measured (2-core AMD EPYC VM, learning, bench_stdp.py --samples 150): 1.1 : 2.9 :
1.1 µs. Groups start only at weighted layers (a pool layer stays with the layer it pools). The estimate
only picks the split; any split gives the same results, and ``split`` in the config overrides it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .layers import LayerParams
from .shapes import ConvShape, FcShape, PoolParams

#: the fixed cost of one input spike of a weighted layer, in units of one neuron reached; fitted to the
#: per-input seconds of conv1 (reach 400) and conv2 (reach 3200) of the N-MNIST network
PER_INPUT = 5000.0
#: what a pool layer costs per input spike, in the same units
POOL = 50.0


def layer_costs(input_shape: Sequence[int], layers: Sequence[LayerParams]) -> list[float]:
    """The estimated cost of each layer per network input spike (units: one neuron reached)."""
    _, h, w = (int(v) for v in input_shape)
    rate = 1.0
    costs: list[float] = []
    for p in layers:
        if isinstance(p, PoolParams):
            costs.append(rate * POOL)
            h, w = -(-h // p.size), -(-w // p.size)
            continue
        if isinstance(p, ConvShape):
            ho, wo = h - p.kernel + 1, w - p.kernel + 1
            reach = min(p.kernel, ho) * min(p.kernel, wo) * p.maps
            inhibited = p.maps if p.r_inf >= 0 else 1
            h, w = ho, wo
        else:
            assert isinstance(p, FcShape)
            reach = p.neurons
            inhibited = p.neurons if p.wta_inf else 1
            h, w = 1, 1
        costs.append(rate * (PER_INPUT + reach))
        # every rule so far has an initial weight mean and an inference threshold; one without counts 1
        rate *= reach * getattr(p, "w_init_mean", 1.0) / getattr(p, "th_inf", 1.0) / inhibited
    return costs


def default_split(input_shape: Sequence[int], layers: Sequence[LayerParams], groups: int) -> tuple[int, ...]:
    """The layer indices where groups 2 .. ``groups`` start: the cut whose most expensive group costs
    least by ``layer_costs`` (ties: the earliest cut). ``groups`` must be in 1 .. ``len(layers)``."""
    if not 1 <= groups <= len(layers):
        msg = f"threads must be in 1 .. {len(layers)} (one group of layers per thread), got {groups}"
        raise ValueError(msg)
    costs = layer_costs(input_shape, layers)
    best: tuple[float, tuple[int, ...]] | None = None
    for cut in itertools.combinations(range(1, len(layers)), groups - 1):
        edges = [0, *cut, len(layers)]
        worst = max(sum(costs[a:b]) for a, b in itertools.pairwise(edges))
        if best is None or worst < best[0]:
            best = (worst, cut)
    assert best is not None
    return best[1]
