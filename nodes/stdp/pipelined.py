"""A ``Network`` run as a pipeline over threads: contiguous layer groups, one worker thread each.

Layers have no feedback and a layer's result does not depend on how its input stream is cut into batches,
so while group B runs batch k, group A can run batch k + 1, and every spike and weight is what
``Network.process`` computes on the same stream (tests/test_stdp_threads.py). The kernels release the GIL
(``nogil``), so the groups run on separate cores; the Python between kernel calls still takes turns.

The contract, for one caller thread:

* ``submit`` hands in a batch with a tag; the batch is validated in the caller's thread (a bad one is a
  ``ValueError`` there and never queued). ``pass_on`` hands in a tag without a batch (a label message,
  say). ``take`` returns what has come out of the last group, in the order handed in: ``(tag, spikes)``
  for a batch, ``(tag, None)`` for a tag passed on.
* ``set_learning`` travels as a marker: each group switches exactly between the batches handed in before
  and after it, as one thread would.
* At most ``depth`` items per group are in flight: ``submit`` waits for room (``full`` says whether it
  would), so the hand-off queues stay short.
* ``wait`` is the barrier: it returns once everything handed in has passed every group. ``state_dict``
  and ``load_state_dict`` wait first: state is read and written only while no worker runs.
* A worker's exception takes its batch's place in the output: ``take`` re-raises it once every output
  before it has been taken. Later batches go on, as after a failed ``Network.process``: the groups before
  the failing one have run that batch, the ones after never see it.
* ``close`` (or leaving the ``with`` block) lets everything handed in finish, stops the (daemon) worker
  threads and joins them.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Self, TypeVar, cast

import numpy as np

from .network import Columns, Network, as_spikes

T = TypeVar("T")

_BATCH, _PASS, _LEARN, _STOP = range(4)
#: how often (s) a waiting caller checks that the workers are still alive
_ALIVE_CHECK_S = 0.5


@dataclass(slots=True)
class _Item(Generic[T]):
    """One thing handed through the groups; owned by one thread at a time (the queues hand it over)."""

    kind: int
    tag: T | None = None
    cols: Columns | None = None
    learning: bool = False
    spikes: np.ndarray | None = None
    error: BaseException | None = None


def group_bounds(layers: int, starts: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """``(start, stop)`` of each group of ``layers`` layers whose groups after the first start at ``starts``
    (increasing, each in ``1 .. layers - 1``); a ``ValueError`` says what is wrong with them."""
    cuts = [int(s) for s in starts]
    if any(b <= a for a, b in itertools.pairwise([0, *cuts, layers])):
        msg = (
            f"split {cuts} must list increasing layer indices in 1 .. {layers - 1}, where the second, third ... "
            f"group starts (layers are numbered from 0)"
        )
        raise ValueError(msg)
    edges = [0, *cuts, layers]
    return tuple(itertools.pairwise(edges))


class PipelinedNetwork(Generic[T]):
    """Runs ``net``'s layers as the contiguous groups that start at layer 0 and at each of ``starts``.

    ``depth``: items in flight per group (the hand-off queues hold no more). ``on_output``: called in the
    last worker's thread each time an item has passed every group (an event loop's wake-up, say); it must
    not block, and an exception it raises is re-raised by the next ``take``. While the pipeline is open
    it owns ``net``: learning goes through ``set_learning``, state through ``state_dict`` and
    ``load_state_dict``.
    """

    def __init__(
        self,
        net: Network,
        starts: Sequence[int],
        *,
        depth: int = 4,
        on_output: Callable[[], None] | None = None,
    ) -> None:
        if depth < 1:
            msg = f"depth must be >= 1, got {depth}"
            raise ValueError(msg)
        self.net = net
        self.groups = group_bounds(len(net.params), starts)
        self.capacity = depth * len(self.groups)
        self._on_output = on_output
        self._learning = net.learning
        self._cond = threading.Condition()
        self._handed = 0  # items handed in (caller thread only)
        self._finished = 0  # items that passed the last group (under _cond)
        self._done: deque[_Item[T]] = deque()  # finished items not taken yet (under _cond)
        self._fault: BaseException | None = None  # raised by on_output (under _cond)
        self._closed = False
        self._queues: list[queue.Queue[_Item[T]]] = [queue.Queue(maxsize=self.capacity) for _ in self.groups]
        self._threads = [
            threading.Thread(
                target=self._work, args=(g, self._learning), name=f"stdp-layers-{start}-{stop - 1}", daemon=True
            )
            for g, (start, stop) in enumerate(self.groups)
        ]
        for thread in self._threads:
            thread.start()

    # -- handing in --------------------------------------------------------------------------------------
    @property
    def learning(self) -> bool:
        """Learning as of the last item handed in."""
        return self._learning

    def set_learning(self, on: bool) -> None:
        """Switch learning at this point of the stream, for every group (a marker through the pipeline)."""
        on = bool(on)
        if on != self._learning:
            self._learning = on
            self.net.learning = on  # what a state read or a later one-thread run sees
            self._hand_in(_Item(kind=_LEARN, learning=on))

    def submit(self, spikes: np.ndarray, tag: T) -> None:
        """Hand in a batch of input spikes (``SPIKE_DTYPE``, validated here); waits while ``full``."""
        cols = self.net.input_columns(spikes)
        self._hand_in(_Item(kind=_BATCH, tag=tag, cols=cols))

    def pass_on(self, tag: T) -> None:
        """Hand in ``tag`` alone: ``take`` returns it after the outputs of every batch handed in before it."""
        self._hand_in(_Item(kind=_PASS, tag=tag))

    def in_flight(self) -> int:
        """Items handed in that have not passed every group yet."""
        with self._cond:
            return self._handed - self._finished

    def full(self) -> bool:
        """Whether ``submit`` would wait: ``depth`` items per group are in flight."""
        return self.in_flight() >= self.capacity

    def _hand_in(self, item: _Item[T]) -> None:
        if self._closed:
            msg = "the pipeline is closed"
            raise RuntimeError(msg)
        with self._cond:
            while self._handed - self._finished >= self.capacity:
                self._wait_step()
            self._handed += 1
        self._queues[0].put(item)  # never waits: the in-flight bound is the queues' size

    # -- taking out --------------------------------------------------------------------------------------
    def take(self) -> list[tuple[T, np.ndarray | None]]:
        """What has passed every group, in the order handed in: ``(tag, output spikes)`` per batch,
        ``(tag, None)`` per tag passed on. A worker's exception is raised in its batch's place (the outputs
        before it are returned first, by this or an earlier call)."""
        out: list[tuple[T, np.ndarray | None]] = []
        with self._cond:
            if self._fault is not None:
                fault, self._fault = self._fault, None
                raise fault
            while self._done:
                item = self._done[0]
                if item.error is not None:
                    if out:
                        break
                    self._done.popleft()
                    raise item.error
                self._done.popleft()
                out.append((cast(T, item.tag), item.spikes))  # every item that comes out has a tag
        return out

    def has_output(self) -> bool:
        """Whether ``take`` would return something (or raise)."""
        with self._cond:
            return bool(self._done) or self._fault is not None

    def wait(self) -> None:
        """Wait until everything handed in has passed every group (outputs stay for ``take``)."""
        with self._cond:
            while self._finished < self._handed:
                self._wait_step()

    def _wait_step(self) -> None:
        """One bounded wait on ``_cond`` (held); a worker that died would otherwise hang the caller."""
        if not self._cond.wait(_ALIVE_CHECK_S) and not all(t.is_alive() for t in self._threads):
            msg = "a worker thread of the pipelined network has died"
            raise RuntimeError(msg)

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """``Network.state_dict`` once everything handed in has passed (the workers are idle then)."""
        self.wait()
        return self.net.state_dict()

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """``Network.load_state_dict`` once everything handed in has passed."""
        self.wait()
        self.net.load_state_dict(state)

    # -- the end -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Let everything handed in finish, then stop the workers and join them (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queues[0].put(_Item(kind=_STOP))
        for thread in self._threads:
            thread.join()

    @property
    def closed(self) -> bool:
        """Whether ``close`` has run."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the workers -------------------------------------------------------------------------------------
    def _work(self, g: int, learning: bool) -> None:
        """Group ``g``'s thread: run its layers over each batch, in order, and hand it on."""
        start, stop = self.groups[g]
        last = g == len(self.groups) - 1
        inbox = self._queues[g]
        while True:
            item = inbox.get()
            if item.kind == _STOP:
                if not last:
                    self._queues[g + 1].put(item)
                return
            if item.kind == _LEARN:
                learning = item.learning
            elif item.kind == _BATCH and item.error is None:
                try:
                    assert item.cols is not None
                    item.cols = self.net.run_layers(item.cols, start, stop, learning)
                    if last:
                        item.spikes = as_spikes(item.cols)
                        item.cols = None
                except BaseException as exc:  # noqa: BLE001 - handed to the caller in the batch's place
                    exc.add_note(f"(in the worker thread of layers {start} .. {stop - 1} of a pipelined network)")
                    item.error = exc
                    item.cols = None
            if last:
                self._finish(item)
            else:
                self._queues[g + 1].put(item)

    def _finish(self, item: _Item[T]) -> None:
        with self._cond:
            if item.kind != _LEARN:
                self._done.append(item)
            self._finished += 1
            self._cond.notify_all()
        if self._on_output is not None:
            try:
                self._on_output()
            except BaseException as exc:  # noqa: BLE001 - re-raised by the next take
                with self._cond:
                    self._fault = exc
