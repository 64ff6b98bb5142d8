"""When one node of a graph saves its state, what it restores, and what it does when a save fails.

The files themselves (atomic writes, generations, the restore plan) are :mod:`pipeline.checkpoint`'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoint import (
    GENERATION_KEY,
    KEEP_GENERATIONS,
    RestorePlan,
    common_generations,
    drop_generations,
    generation_path,
    load_state,
    plan_restore,
    save_generation,
    save_state,
)
from .errors import CheckpointError

if TYPE_CHECKING:
    from .node import Counters, Node

#: Seconds before the first retry of a checkpoint that failed; each further failure doubles it, up to the
#: checkpoint period.
RETRY_FIRST_S = 1.0
#: While checkpoints keep failing, a warning line at most this often (each failure is counted).
FAILING_SAY_EVERY_S = 60.0


class NodeCheckpoints:
    """When one node saves its state and what it restores.

    A member of the graph's consistent cuts saves on the markers that travel with the stream, each as a
    numbered generation, and restores the newest generation that every member completed and can read
    (``plan``, decided once for the graph; a node run alone decides itself). Any other node saves on its
    own period. Both save once more at the end. Nothing is saved or deleted until the graph has started
    streaming (``begin``): a refused restore leaves the folder as it was.

    A checkpoint that cannot be written (a full disk, a folder turned read-only) costs no learning: the
    node goes on, the previous checkpoint stays the one a restart restores, and the save is retried after
    a backoff (1 s, doubling up to the period). The failures are counted (``checkpoint_failures``); the
    first is logged as an error, later ones in one warning per minute."""

    def __init__(
        self,
        node: Node,
        state_dir: str | None,
        *,
        members: list[str] | None,
        period_s: float,
        counters: Counters,
        plan: RestorePlan | None = None,
    ) -> None:
        self.node = node
        self.path: Path | None = Path(state_dir) / f"{node.name}.npz" if state_dir else None
        #: the members of the graph's cuts, when this node is one
        self.members = members if members is not None and node.name in members else None
        self.period_s = period_s
        self.counters = counters
        self.plan = plan
        #: of the last marker seen (sent, for the source)
        self.generation = 0
        #: of the end-of-stream, once known
        self.final_generation: int | None = None
        #: generations of this node newer than the one restored: dropped once the graph streams
        self._drop_above: int | None = None
        self._begun = False
        self._last = time.monotonic()
        self._failing = 0  # consecutive failed saves
        self._retry_at = 0.0
        self._said_at = 0.0

    @property
    def in_cut(self) -> bool:
        """Whether this node takes part in the graph's consistent cuts (it saves on markers)."""
        return self.members is not None

    def restore(self) -> None:
        """Load the node's kept state, if any: for a member of the cuts, the generation of the plan.

        Reads only: what a refused restore found stays as it was."""
        path = self.path
        if path is None:
            return
        name, log = self.node.name, self.node.log
        if self.members is not None:
            plan = self.plan
            if plan is None:  # a node run alone: it decides from what it sees
                plan = plan_restore(path.parent, self.members)
                assert plan is not None
                plan.say(log)
            if plan.generation is not None:
                path = generation_path(path.parent, name, plan.generation)
                # a crash left newer checkpoints of some nodes: the stream is replayed from the cut
                self._drop_above = plan.generation
            elif path.exists():
                log.warning(
                    "%s: no checkpoint generation completed by every node in %s: resuming from this node's "
                    "own last checkpoint (the nodes' states were taken at different points of the stream)",
                    name,
                    path.parent,
                )
        if not path.exists():
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
        log.info("%s: restored state from %s", name, path)

    def begin(self) -> None:
        """The graph streams: from now on the node saves, and its generations newer than the restored one
        (left by a crash) go. The checkpoint period counts from now."""
        if self.path is not None and self._drop_above is not None:
            drop_generations(self.path.parent, self.node.name, above=self._drop_above)
        self._begun = True
        self.restart_period()

    def save(self, generation: int | None = None, *, final: bool = False) -> None:
        """Save the node's state; with ``generation`` (a marker's), as that generation of a consistent cut.

        Raises ``CheckpointError`` (the message names the file) when it cannot be written; unless ``final``
        that is also counted, logged and retried after a backoff (see the class)."""
        path = self.path
        if path is None or not self._begun:
            return
        started = time.perf_counter()
        state = self.node.snapshot()
        try:
            if self.members is not None and generation is not None:
                # a node without state still records that the marker passed: the cut is complete only then
                save_generation(path.parent, self.node.name, generation, state or {})
                common = common_generations(path.parent, self.members)
                if common:
                    drop_generations(path.parent, self.node.name, below=common[-KEEP_GENERATIONS:][0])
            elif state is None:
                return
            else:
                save_state(path, state)
        except CheckpointError as exc:
            self._failed(exc, final=final)
            raise
        if self._failing:
            self.node.log.warning(
                "%s: checkpoints are written again, after %d failed tries", self.node.name, self._failing
            )
            self._failing = 0
        self.counters.checkpoints += 1
        self.counters.checkpoint_ms = round((time.perf_counter() - started) * 1000, 2)
        self.counters.checkpoint_at = round(time.time(), 3)
        self._last = time.monotonic()

    def _failed(self, exc: CheckpointError, *, final: bool) -> None:
        self.counters.checkpoint_failures += 1
        self._failing += 1
        now = time.monotonic()
        self._retry_at = now + min(RETRY_FIRST_S * 2 ** (self._failing - 1), max(self.period_s, RETRY_FIRST_S))
        if final:  # the runner reports it as the node's error
            return
        log, name = self.node.log, self.node.name
        if self._failing == 1:
            self._said_at = now
            log.error(
                "%s: %s; learning goes on, the checkpoint is retried in %.0f s, and a restart restores the "
                "last checkpoint written",
                name,
                exc,
                self._retry_at - now,
            )
        elif now - self._said_at >= FAILING_SAY_EVERY_S:
            self._said_at = now
            log.warning("%s: checkpoints still failing (%d tries): %s", name, self._failing, exc)

    def due(self) -> bool:
        """Whether a checkpoint period has passed since the last save (or the start of the stream); after
        a failed save, whether its retry is due."""
        if self._failing:
            return time.monotonic() >= self._retry_at
        return self.period_s > 0 and time.monotonic() - self._last >= self.period_s

    def restart_period(self) -> None:
        """Count the checkpoint period afresh from now, as if a checkpoint had just been saved."""
        self._last = time.monotonic()

    def mark(self) -> int:
        """The source of the cuts saves its position as the next generation; returns the marker's number.

        When saving fails, no marker goes out, and the next try is after the backoff."""
        self.generation += 1
        self.save(self.generation)
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
