"""Checkpoints of learned state, and the consistent cuts that let a whole graph resume.

A checkpoint is a ``.npz`` of named arrays, written to a temporary file, fsynced, then renamed over the old
one, so a crash never leaves a half-written checkpoint. :class:`NodeCheckpoints` decides when one node saves
and what it restores.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CheckpointError

if TYPE_CHECKING:
    from .config import GraphConfig
    from .node import Counters, Node


def save_state(path: str | os.PathLike[str], state: Mapping[str, np.ndarray]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename); returns the path.

    A crash at any point leaves either the old checkpoint or the new one, never a mix."""
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
        msg = f"cannot write checkpoint {target}: {exc}"
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


def cut_members(graph: GraphConfig) -> list[str] | None:
    """The nodes whose checkpoints form consistent cuts, or None.

    That needs one source and no node with two upstream links: a marker then reaches every node exactly
    once, after everything the source sent before it, and no node has to line up markers arriving on
    several inputs. Nodes fed only through taps (lossy, may miss a marker) are not members. In other
    graphs every node checkpoints on its own period instead."""
    sources = [n for n in graph.nodes if not graph.upstream(n) and not graph.tap_upstream(n)]
    if len(sources) != 1 or any(len(graph.upstream(n)) > 1 for n in graph.nodes):
        return None
    members, todo = [], [sources[0]]
    while todo:
        n = todo.pop()
        members.append(n)
        todo.extend(graph.downstream(n))
    return sorted(members)


class NodeCheckpoints:
    """When one node saves its state and what it restores.

    A member of the graph's consistent cuts saves on the markers that travel with the stream, each as a
    numbered generation, and restores the newest generation that every member completed. Any other node
    saves on its own period. Both save once more at the end. Nothing is saved until the node's kept state
    was restored: a checkpoint the node refused stays as it is."""

    def __init__(
        self,
        node: Node,
        state_dir: str | None,
        *,
        members: list[str] | None,
        period_s: float,
        counters: Counters,
    ) -> None:
        self.node = node
        self.path = Path(state_dir) / f"{node.name}.npz" if state_dir else None
        #: the members of the graph's cuts, when this node is one
        self.members = members if members is not None and node.name in members else None
        self.period_s = period_s
        self.counters = counters
        #: of the last marker seen (sent, for the source)
        self.generation = 0
        #: of the end-of-stream, once known
        self.final_generation: int | None = None
        self._restored = False
        self._last = time.monotonic()

    @property
    def in_cut(self) -> bool:
        """Whether this node takes part in the graph's consistent cuts (it saves on markers)."""
        return self.members is not None

    def restore(self) -> None:
        """Load the node's kept state, if any: for a member of the cuts, the newest generation in common."""
        path = self.path
        if path is None:
            self._restored = True
            return
        name, log = self.node.name, self.node.log
        if self.members is not None:
            generation = newest_common_generation(path.parent, self.members)
            if generation is not None:
                path = generation_path(path.parent, name, generation)
                # a crash left newer checkpoints of some nodes: the stream is replayed from the cut
                drop_generations(path.parent, name, above=generation)
            elif path.exists():
                log.warning(
                    "%s: no checkpoint generation completed by every node in %s: resuming from this node's "
                    "own last checkpoint (the nodes' states were taken at different points of the stream)",
                    name,
                    path.parent,
                )
        if not path.exists():
            self._restored = True
            return
        state = load_state(path)
        kept = state.pop(GENERATION_KEY, None)
        if kept is not None:
            self.generation = int(kept)
        try:
            if state:  # empty: the node had no state yet when the cut was taken
                self.node.restore(state)
        except (ValueError, KeyError, CheckpointError) as exc:
            msg = (
                f"checkpoint {path} does not fit nodes.{name}: {exc} (a checkpoint of another graph or "
                "configuration? give this one its own --state folder)"
            )
            raise CheckpointError(msg) from None
        self._restored = True
        log.info("%s: restored state from %s", name, path)

    def save(self, generation: int | None = None) -> None:
        """Save the node's state; with ``generation`` (a marker's), as that generation of a consistent cut."""
        path = self.path
        if path is None or not self._restored:
            return
        state = self.node.snapshot()
        if self.members is not None and generation is not None:
            # a node without state still records that the marker passed: the cut is complete only then
            save_generation(path.parent, self.node.name, generation, state or {})
            common = newest_common_generation(path.parent, self.members)
            if common is not None:
                drop_generations(path.parent, self.node.name, below=common)
        elif state is None:
            return
        else:
            save_state(path, state)
        self.counters.checkpoints += 1
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether a checkpoint period has passed since the last save (or the start of the stream)."""
        return self.period_s > 0 and time.monotonic() - self._last >= self.period_s

    def restart_period(self) -> None:
        """Count the checkpoint period afresh from now, as if a checkpoint had just been saved."""
        self._last = time.monotonic()

    def mark(self) -> int:
        """The source of the cuts saves its position as the next generation; returns the marker's number.

        When saving fails the next try is a period later, not on every message."""
        self.generation += 1
        try:
            self.save(self.generation)
        except CheckpointError:
            self.restart_period()
            raise
        return self.generation

    def marker(self, body: Mapping[str, Any]) -> int | None:
        """The generation a control message carries, when this node takes part in the cuts."""
        generation = body.get("generation")
        return generation if isinstance(generation, int) and self.members is not None else None

    def end_generation(self) -> int | None:
        """The generation the node's end-of-stream carries: the source of the cuts makes the end a cut."""
        if self.members is not None and self.node.is_source:
            self.final_generation = self.generation + 1
        return self.final_generation
