"""The sweep file: which graph, which metric, which seeds, and the search space over its ``--set`` keys.

::

    base = "../nmnist.toml"                      # the graph, relative to this file
    metric = "validation_accuracy"               # what selects the best trial (the highest)
    seeds = [1, 2]                               # every point of the space runs once per seed
    samples = 8                                  # points drawn from the space (random search)
    [fixed]                                      # overrides every trial shares: the tuning protocol
    "nodes.source.phases" = [...]
    [space]                                      # grid, choice, uniform, loguniform over any --set key
    "nodes.classifier.threshold" = { uniform = [1.0, 4.0] }

Honest selection is checked here, before anything runs (``check_honest``): the metric of a sweep must come
from data held out of the *training* split, never from a test split, unless the file says ``allow_test``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nodes.sources.phased import DEFAULT_PHASES, PhasedSource, parse_split
from pipeline.config import build_params, parse_graph
from pipeline.errors import ConfigError
from pipeline.overrides import apply_overrides
from pipeline.registry import node_class
from pipeline.validation import validate_graph

from .toml_text import toml_value

#: Metrics a sweep selects on, all read from a trial's results. ``validation_accuracy``: the evaluator's
#: accuracy over the evaluation-only phases, which must all be held out of the training split;
#: ``train_accuracy`` / ``window_accuracy``: the prequential accuracy (whole stream / last window), each
#: decision made before learning from its sample; ``test_accuracy``: a test split, only with allow_test.
Metric = Literal["validation_accuracy", "train_accuracy", "window_accuracy", "test_accuracy"]

#: What the early-stopping scheduler ranks trials on while they learn: the prequential accuracy over the
#: evaluator's window, the only figure a trial has before its evaluation phases.
CURVE_METRIC = "window_accuracy"

#: The kinds of search-space entries and how many bounds or values each takes.
SPACE_KINDS = ("grid", "choice", "uniform", "loguniform")


@dataclass(frozen=True, kw_only=True)
class AshaParams:
    """Asynchronous successive halving (ASHA): a trial is judged first after ``grace`` curve reports, and
    at each later rung (``grace * reduction**k`` reports, up to ``max_reports``) only the best
    ``1/reduction`` of the trials that reached it go on."""

    grace: int = 4
    reduction: int = 3
    max_reports: int = 10_000

    def __post_init__(self) -> None:
        if self.grace < 1 or self.reduction < 2 or self.max_reports < self.grace:
            msg = "needs grace >= 1, reduction >= 2 and max_reports >= grace"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A sweep file. ``base``: the graph file (relative to the sweep file). ``metric``: what selects the best trial: the
    highest (every metric is an accuracy). ``seeds``: each point of the space runs once per seed, the seed going to
    every ``seed_keys`` key (default: every ``nodes.<name>.seed`` of the base graph). ``samples``: points drawn from
    the space (each grid point ``samples`` times). ``search``: ``random`` (grid entries crossed, the others drawn)
    or ``grid`` (grid and choice entries only). ``scheduler``: ``asha`` stops trials whose learning curve lags (see
    ``AshaParams``), ``fifo`` runs every trial to its end. ``allow_test``: select on a test split anyway (the
    figures are then not an honest estimate). ``final_test``: after selection, run the base graph with the best
    parameters once and report its test figure apart. ``test``: overrides of that final run only. ``cpus_per_trial``
    / ``memory_mb_per_trial``: what Ray reserves per trial (0 MB: no reservation)."""

    base: str
    name: str = ""
    metric: Metric = "validation_accuracy"
    seeds: tuple[int, ...] = (1,)
    seed_keys: tuple[str, ...] | None = None
    samples: int = 1
    search: Literal["random", "grid"] = "random"
    scheduler: Literal["asha", "fifo"] = "asha"
    asha: AshaParams = field(default_factory=AshaParams)
    allow_test: bool = False
    final_test: bool = True
    cpus_per_trial: float = 1.0
    memory_mb_per_trial: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.samples < 1 or not self.seeds or self.cpus_per_trial <= 0 or self.memory_mb_per_trial < 0:
            msg = "needs samples >= 1, at least one seed, cpus_per_trial > 0 and memory_mb_per_trial >= 0"
            raise ValueError(msg)


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: its spec, the file it came from, and the base graph's raw document."""

    spec: SweepSpec
    path: Path
    base_path: Path
    base_raw: dict[str, Any]

    @property
    def name(self) -> str:
        """The experiment's name: the file's ``name``, else the sweep file's stem."""
        return self.spec.name or self.path.stem

    def seed_keys(self) -> tuple[str, ...]:
        """The keys each trial's seed goes to."""
        if self.spec.seed_keys is not None:
            return self.spec.seed_keys
        nodes = self.base_raw.get("nodes", {})
        return tuple(f"nodes.{n}.seed" for n, table in nodes.items() if isinstance(table, dict) and "seed" in table)

    def overrides(self, params: Mapping[str, Any], *, seed: int | None, fixed: bool = True) -> list[str]:
        """The ``--set`` overrides of one trial: the fixed ones (unless ``fixed`` is false: the final test
        run), the trial's parameters and its seed."""
        items: list[tuple[str, Any]] = list(self.spec.fixed.items()) if fixed else list(self.spec.test.items())
        items += list(params.items())
        if seed is not None:
            items += [(key, seed) for key in self.seed_keys()]
        return [f"{key}={toml_value(value)}" for key, value in items]

    def trial_raw(self, params: Mapping[str, Any], *, seed: int | None, fixed: bool = True) -> dict[str, Any]:
        """The raw graph document of one trial."""
        return apply_overrides(self.base_raw, self.overrides(params, seed=seed, fixed=fixed), str(self.base_path))


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file: its keys, its space, its base graph, and that it selects honestly."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        msg = f"sweep file not found: {p}"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{p}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    spec: SweepSpec = build_params(SweepSpec, raw, str(p))
    base_path = (p.parent / spec.base).resolve()
    try:
        base_raw = tomllib.loads(base_path.read_text())
    except FileNotFoundError:
        msg = f"{p}: base graph not found: {base_path}"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{base_path}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    sweep = Sweep(spec, p, base_path, base_raw)
    for key, entry in spec.space.items():
        space_values(key, entry, spec.search, str(p))
    check_honest(sweep)
    # every key must land in the graph: one trial's document, with a first value of each entry, must parse
    first = {key: space_values(key, entry, spec.search, str(p))[0] for key, entry in spec.space.items()}
    validate_graph(parse_graph(sweep.trial_raw(first, seed=spec.seeds[0]), f"{p} (a trial of {base_path.name})"))
    return sweep


def space_values(key: str, entry: Any, search: str, where: str) -> list[Any]:
    """Check one search-space entry; returns its values (grid, choice) or its bounds (uniform, loguniform)."""
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in SPACE_KINDS:
        msg = f"{where}: space.{key!r} must be a table with one of {', '.join(SPACE_KINDS)}, e.g. {{ grid = [1, 2] }}"
        raise ConfigError(msg)
    kind, values = next(iter(entry.items()))
    if not isinstance(values, list) or not values:
        msg = f"{where}: space.{key!r}.{kind} must be a non-empty list"
        raise ConfigError(msg)
    if kind in ("uniform", "loguniform"):
        numbers = len(values) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if not numbers or values[0] >= values[1] or (kind == "loguniform" and values[0] <= 0):
            msg = f"{where}: space.{key!r}.{kind} must be [low, high] with low < high" + (
                " and low > 0" if kind == "loguniform" else ""
            )
            raise ConfigError(msg)
        if search == "grid":
            msg = f"{where}: space.{key!r} is {kind}, but a grid search takes grid and choice entries only"
            raise ConfigError(msg)
    return list(values)


def check_honest(sweep: Sweep) -> None:
    """Refuse a sweep that would select on test data (unless ``allow_test``).

    ``validation_accuracy`` is the evaluator's accuracy over every evaluation-only phase (the classifier
    not learning), so each of those phases must replay part of a training split that no learning phase
    replays (``Train[600:]`` after learning from ``Train[:600]``); ``test_accuracy`` is a test figure.
    The prequential metrics are measured on training samples before learning from them, and pass."""
    spec = sweep.spec
    if spec.allow_test or spec.metric in ("train_accuracy", "window_accuracy"):
        return
    where = f"{sweep.path}"
    if spec.metric == "test_accuracy":
        msg = (
            f"{where}: metric test_accuracy selects on test data; use validation_accuracy with a validation phase "
            "held out of the training split, or set allow_test = true (the result is then no honest estimate)"
        )
        raise ConfigError(msg)
    raw = sweep.trial_raw({}, seed=None)
    evaluated: list[tuple[str, str, tuple[str, int, int | None]]] = []
    learned: list[tuple[str, str, tuple[str, int, int | None]]] = []
    for name, table in raw.get("nodes", {}).items():
        if not isinstance(table, dict) or not _is_phased(table.get("type")):
            continue
        for i, phase in enumerate(table.get("phases", DEFAULT_PHASES)):
            split = str(phase.get("split", "train"))
            item = (f"nodes.{name}.phases[{i}]", split, parse_split(split))
            if not phase.get("classifier", True):  # its decisions are the evaluator's test_accuracy
                evaluated.append(item)
            if phase.get("features", True) or phase.get("classifier", True):
                learned.append(item)
    if not evaluated:
        msg = f"{where}: metric validation_accuracy needs an evaluation-only phase (classifier = false) in the graph"
        raise ConfigError(msg)
    for place, split, (part, lo, hi) in evaluated:
        if part.lower() != "train":
            msg = (
                f"{where}: {place} evaluates on split {split!r}, not on data held out of the training split: "
                f"validation_accuracy would select on test data. Replace it (in [fixed]) by a validation phase such "
                f'as {{ split = "{part.replace("est", "rain")}[600:]", classifier = false, features = false }} '
                "after learning from the part before, or set allow_test = true"
            )
            raise ConfigError(msg)
        for other, learned_split, (lpart, llo, lhi) in learned:
            overlap = lpart == part and llo < (hi if hi is not None else float("inf"))
            if overlap and lo < (lhi if lhi is not None else float("inf")):
                msg = (
                    f"{where}: {place} validates on {split!r}, which {other} ({learned_split!r}) learns from: the "
                    "validation samples must be held out of learning (e.g. learn on Train[:600], validate on "
                    "Train[600:])"
                )
                raise ConfigError(msg)


def _is_phased(node_type: Any) -> bool:
    """Whether a node of this type is a labelled dataset source with train/test phases."""
    if not isinstance(node_type, str):
        return False
    try:
        return issubclass(node_class(node_type), PhasedSource)
    except ConfigError:
        return False
