"""Checkpoints of learned state, and the consistent cuts that let a whole graph resume.

A checkpoint is a ``.npz`` of named arrays, written to a temporary file, fsynced, then renamed over the old
one, so a crash never leaves a half-written checkpoint. Every failure to write one is a ``CheckpointError``
naming the file. :mod:`pipeline.node_checkpoints` decides when one node saves and what it restores.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import CheckpointError

if TYPE_CHECKING:
    from .config import GraphConfig


def save_state(path: str | os.PathLike[str], state: Mapping[str, np.ndarray]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename); returns the path.

    A crash at any point leaves either the old checkpoint or the new one, never a mix."""
    target = Path(path)
    tmp: str | None = None
    try:  # the folder too: it may have become read-only, a file, or full since the run started
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
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
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
        msg = f"cannot write checkpoint {target}: {exc.strerror or exc}"
        raise CheckpointError(msg) from None
    return target


def load_state(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The named arrays of the checkpoint at ``path``; ``CheckpointError`` names the file when it is
    missing, unreadable or corrupt."""
    p = Path(path)
    try:  # the file is opened here: np.load leaves it open when it is not a valid .npz
        with open(p, "rb") as f, np.load(f, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        msg = f"checkpoint not found: {p}"
        raise CheckpointError(msg) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        msg = f"checkpoint {p} is unreadable or corrupt: {exc}"
        raise CheckpointError(msg) from None


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
    """Where generation ``generation`` of ``node``'s checkpoint is kept in ``state_dir``."""
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


def common_generations(state_dir: str | os.PathLike[str], nodes: list[str]) -> list[int]:
    """The generations every one of ``nodes`` has completed, oldest first."""
    common: set[int] | None = None
    for node in nodes:
        have = set(generations(state_dir, node))
        common = have if common is None else common & have
    return sorted(common or ())


def newest_common_generation(state_dir: str | os.PathLike[str], nodes: list[str]) -> int | None:
    """The newest generation every one of ``nodes`` has completed, or None when there is none."""
    common = common_generations(state_dir, nodes)
    return common[-1] if common else None


#: Complete generations each member keeps: the newest, and the one before in case the newest turns out to
#: be unreadable (a disk that corrupted it); a restore then falls back to the older one.
KEEP_GENERATIONS = 2


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
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        save_state(latest, state)
    return path


def drop_generations(
    state_dir: str | os.PathLike[str], node: str, *, below: int | None = None, above: int | None = None
) -> None:
    """Delete the kept generations of ``node`` older than ``below`` or newer than ``above``.

    A file that cannot be deleted (a folder turned read-only) stays: it is only disk space, or, above, a
    generation that a later one of the same number replaces."""
    for g in generations(state_dir, node):
        if (below is not None and g < below) or (above is not None and g > above):
            with contextlib.suppress(OSError):
                generation_path(state_dir, node, g).unlink(missing_ok=True)


@dataclass(frozen=True)
class RestorePlan:
    """The generation every member of a graph's consistent cuts restores, decided once before any node
    starts (None: no generation in common), and why newer complete generations were passed over."""

    generation: int | None
    skipped: tuple[str, ...] = ()

    def say(self, log: logging.Logger) -> None:
        """Say in one line that the newest complete generation was passed over, when it was."""
        if self.skipped:
            log.warning(
                "%s: resuming every node from checkpoint generation %d, the newest that every node can read",
                self.skipped[0],
                self.generation,
            )


def plan_restore(state_dir: str | os.PathLike[str] | None, members: list[str] | None) -> RestorePlan | None:
    """What the members of a graph's cuts restore from ``state_dir``: the newest generation that every
    member completed and whose files all read back (None when the graph has no cuts or no folder).

    Reading every file before any node starts keeps a refused restore from changing anything, and lets a
    corrupt newest generation fall back to the one kept before it. When no complete generation reads back,
    the start is refused (``CheckpointError`` naming the file) and the folder is left as it is."""
    if state_dir is None or members is None:
        return None
    skipped: list[str] = []
    for generation in reversed(common_generations(state_dir, members)):
        why = next((w for n in members if (w := _unreadable(generation_path(state_dir, n, generation)))), None)
        if why is None:
            return RestorePlan(generation, tuple(skipped))
        skipped.append(why)
    if skipped:
        msg = (
            f"{skipped[0]}, and no older checkpoint generation that every node can read is kept in {state_dir} "
            "(move the folder aside to start afresh: docs/checkpoints.md)"
        )
        raise CheckpointError(msg)
    return RestorePlan(None)


def _unreadable(path: Path) -> str | None:
    """Why the checkpoint at ``path`` cannot be read back, or None when it can."""
    try:
        load_state(path)
    except CheckpointError as exc:
        return str(exc)
    return None


def check_state_dir(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a state folder that cannot be written before a run starts (``what`` names the option or
    key that gave it, e.g. ``--state``), rather than at its first checkpoint."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        msg = f"{what} {path}: is a file, not a folder; give a folder for the checkpoints"
        raise CheckpointError(msg)
    folder = p
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        msg = f"{what} {path}: {folder} is a file, not a folder"
        raise CheckpointError(msg)
    if not os.access(folder, os.W_OK | os.X_OK):
        msg = f"{what} {path}: cannot write in {folder}"
        raise CheckpointError(msg)


def cut_members(graph: GraphConfig) -> list[str] | None:
    """The nodes whose checkpoints form consistent cuts, or None.

    That needs one source and no node with two upstream links: a marker then reaches every node exactly
    once, after everything the source sent before it, and no node has to line up markers arriving on
    several inputs. Nodes fed only through taps (lossy, may miss a marker) are not members, and a link out
    of one (the dashboard's commands) carries no markers, so it does not count as a second upstream link.
    In other graphs every node checkpoints on its own period instead."""
    sources = [n for n in graph.nodes if not graph.upstream(n) and not graph.tap_upstream(n)]

    def marker_inputs(n: str) -> int:
        return sum(1 for u in graph.upstream(n) if not graph.fed_by_taps_only(u))

    if len(sources) != 1 or any(marker_inputs(n) > 1 for n in graph.nodes):
        return None
    members, todo = [], [sources[0]]
    while todo:
        n = todo.pop()
        members.append(n)
        todo.extend(graph.downstream(n))
    return sorted(members)
