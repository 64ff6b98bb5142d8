"""Atomic checkpoints of learned state: a ``.npz`` of named arrays, written to a temporary file, fsynced,
then renamed over the old one, so a crash never leaves a half-written checkpoint."""

from __future__ import annotations

import glob
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import CheckpointError


def save_state(path: str | os.PathLike[str], state: Mapping[str, np.ndarray]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in state.items()})  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {target}: {exc}") from None
    return target


def load_state(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    p = Path(path)
    try:  # the file is opened here: np.load leaves it open when it is not a valid .npz
        with open(p, "rb") as f, np.load(f, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {p}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"checkpoint {p} is unreadable or corrupt: {exc}") from None


# -- consistent cuts ---------------------------------------------------------------------------------------
# In a graph that is a tree under one source, periodic checkpoints are taken on a marker: the source saves
# its position, then sends a ``checkpoint`` control message numbered with a generation; every node saves its
# state when the marker reaches it (it has then processed exactly what the source had sent before saving)
# and forwards it. The files of one generation therefore form a consistent cut of the whole graph. Each
# generation is kept as ``<node>.g<generation>.npz`` (``<node>.npz`` is a link to the newest), so that after
# a crash, when the marker of the last generation had not reached every node yet, every node can restore
# the newest generation that all of them completed.

#: Key of the generation number inside a checkpoint written on a marker.
GENERATION_KEY = "__generation__"


def generation_path(state_dir: str | os.PathLike[str], node: str, generation: int) -> Path:
    return Path(state_dir) / f"{node}.g{generation:09d}.npz"


def generations(state_dir: str | os.PathLike[str], node: str) -> list[int]:
    """The generations of ``node`` kept in ``state_dir``, oldest first."""
    found = []
    prefix = f"{node}.g"
    for p in Path(state_dir).glob(f"{glob.escape(node)}.g*.npz"):
        digits = p.name[len(prefix) : -len(".npz")]
        if digits.isdigit():
            found.append(int(digits))
    return sorted(found)


def newest_common_generation(state_dir: str | os.PathLike[str], nodes: list[str]) -> int | None:
    """The newest generation every one of ``nodes`` has completed, or None when there is none."""
    common: set[int] | None = None
    for node in nodes:
        have = set(generations(state_dir, node))
        common = have if common is None else common & have
        if not common:
            return None
    return max(common) if common else None


def save_generation(
    state_dir: str | os.PathLike[str], node: str, generation: int, state: Mapping[str, np.ndarray]
) -> Path:
    """Write ``state`` as generation ``generation`` of ``node`` and make ``<node>.npz`` point at it."""
    state = {**state, GENERATION_KEY: np.array(generation, dtype=np.int64)}
    path = save_state(generation_path(state_dir, node, generation), state)
    latest = Path(state_dir) / f"{node}.npz"
    tmp = latest.with_name(latest.name + ".link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, latest)
    except OSError:  # no hard links on this file system: write it twice
        tmp.unlink(missing_ok=True)
        save_state(latest, state)
    return path


def drop_generations(
    state_dir: str | os.PathLike[str], node: str, *, below: int | None = None, above: int | None = None
) -> None:
    """Delete the kept generations of ``node`` older than ``below`` or newer than ``above``."""
    for g in generations(state_dir, node):
        if (below is not None and g < below) or (above is not None and g > above):
            generation_path(state_dir, node, g).unlink(missing_ok=True)
