"""Event batches in, frames out: the streaming driver around ``kernel.bin_events``.

Frames are binned a chunk at a time (a few dozen frames, a few MiB), so a recording of any length renders
in bounded memory. A chunk is handed on once an event past its last frame has arrived; the recordings are
in time order, so what is handed on is complete (an event older than a frame already handed on is left
out of it, and counted in ``FrameBinner.late``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.events import EVENT_DTYPE, copy_records
from recordings.recording import concat
from recordings.video.kernel import bin_events, frame_end, paint

#: Bytes of counts one chunk may take; the frames per chunk follow from the sensor size.
CHUNK_BYTES = 16 << 20


@dataclass(frozen=True, kw_only=True)
class Frame:
    """One frame of the video: its index, the recording time it ends at, its counts and their total."""

    index: int  #: frame number, from 0
    t_end: int  #: end of the frame's window, µs, in the recording's time base
    counts: np.ndarray  #: ``(H, W, 2)`` uint16 events per pixel (channel 0 OFF, 1 ON); valid until the next frame
    events: int  #: events in the frame's window


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Where frames fall in the recording: ``t0`` the start (µs), ``step`` recording time per frame (µs),
    ``window`` the recording time each frame shows (µs; 0: back to the previous frame's end, so frames tile the
    recording), ``n_frames`` how many (``None``: until the events end).
    Frame ``k`` ends at ``kernel.frame_end(t0, step, k)``."""

    t0: int
    step: float
    window: int
    n_frames: int | None = None

    def __post_init__(self) -> None:
        if not self.step > 0 or self.window < 0:
            msg = f"the frame step must be positive and the window >= 0, got {self.step} µs and {self.window} µs"
            raise ValueError(msg)
        if self.n_frames is not None and self.n_frames < 0:
            msg = f"n_frames must be >= 0, got {self.n_frames}"
            raise ValueError(msg)


class FrameBinner:
    """Turns event batches (``EVENT_DTYPE``, in time order) into ``Frame`` s for a ``width x height`` sensor."""

    def __init__(self, width: int, height: int, timing: Timing) -> None:
        if width < 1 or height < 1:
            msg = f"the sensor size must be positive, got {width}x{height}"
            raise ValueError(msg)
        self.width = width
        self.height = height
        self.timing = timing
        per_frame = width * height * 2 * 2
        self.chunk = int(max(1, min(64, CHUNK_BYTES // per_frame)))
        self._counts = np.zeros((self.chunk, height, width, 2), dtype=np.uint16)
        self._events = np.zeros(self.chunk, dtype=np.int64)
        self._f0 = 0
        self._carry = np.zeros(0, dtype=EVENT_DTYPE)
        self.late = 0  #: events that arrived after the frames they belong to had been handed on

    @property
    def _limit(self) -> int:
        n = self.timing.n_frames
        return int(np.iinfo(np.int64).max // 4) if n is None else n

    def _bin(self, ev: np.ndarray) -> None:
        tm = self.timing
        t, x, y, p = (np.ascontiguousarray(ev[name]) for name in ("t", "x", "y", "p"))
        bin_events(t, x, y, p, tm.t0, tm.step, tm.window, self._f0, self._limit, self._counts, self._events)

    def _last_frame(self, ev: np.ndarray) -> np.ndarray:
        """Per event, the last frame whose window holds it, or the one after (a float guess, one too many
        at worst: an event carried needlessly is harmless, one dropped from the carry would be lost)."""
        tm = self.timing
        return np.floor((ev["t"] - tm.t0 + max(tm.window, tm.step)) / tm.step).astype(np.int64)

    def _emit(self, upto: int) -> Iterator[Frame]:
        """The frames of the current chunk below ``upto``."""
        tm = self.timing
        for j in range(min(upto, self._f0 + self.chunk) - self._f0):
            k = self._f0 + j
            t_end = frame_end(tm.t0, tm.step, k)
            yield Frame(index=k, t_end=t_end, counts=self._counts[j], events=int(self._events[j]))

    def _advance(self) -> None:
        self._f0 += self.chunk
        self._counts[:] = 0
        self._events[:] = 0

    def push(self, batch: np.ndarray) -> Iterator[Frame]:
        """Bin ``batch``; yields the frames it completes (each valid until the next is taken)."""
        if batch.dtype != EVENT_DTYPE or batch.ndim != 1:
            msg = f"events must be a 1-d array of EVENT_DTYPE, got {batch.dtype} with shape {batch.shape}"
            raise ValueError(msg)
        if not batch.size:
            return
        tm = self.timing
        if self._f0:
            handed_on = frame_end(tm.t0, tm.step, self._f0 - 1)
            if int(batch["t"].min()) < handed_on:
                self.late += int(np.count_nonzero((batch["t"] < handed_on) & (batch["t"] >= tm.t0)))
        self._bin(batch)
        # a copy: a reader may reuse the batch's memory for the next one
        later = copy_records(batch[self._last_frame(batch) >= self._f0 + self.chunk])
        if later.size:
            self._carry = concat([self._carry, later]) if self._carry.size else later
        # the frames before the newest event's are complete (one frame of slack for the float guess)
        newest = min(int(np.floor((int(batch["t"].max()) - tm.t0) / tm.step)) - 1, self._limit)
        while newest >= self._f0 + self.chunk:
            yield from self._next_chunk(self._f0 + self.chunk)

    def _next_chunk(self, upto: int) -> Iterator[Frame]:
        """Hand on the current chunk's frames below ``upto``, then bin what is carried into the next chunk."""
        yield from self._emit(upto)
        self._advance()
        if self._carry.size:
            self._bin(self._carry)
            self._carry = self._carry[self._last_frame(self._carry) >= self._f0 + self.chunk]

    def finish(self, last_t: int | None) -> Iterator[Frame]:
        """The remaining frames: up to ``n_frames`` when it is set, else up to the frame of ``last_t``
        (the last event's time; ``None``: no events, no frames)."""
        tm = self.timing
        if tm.n_frames is not None:
            end = tm.n_frames
        elif last_t is None or last_t < tm.t0:
            end = 0
        else:  # the frame that holds the last event
            end = max(int(np.floor((last_t - tm.t0) / tm.step)) - 1, 0)
            while frame_end(tm.t0, tm.step, end) <= last_t:
                end += 1
            end += 1
        while self._f0 < end:
            yield from self._next_chunk(end)


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for the types a render calls them with, so that
    what a render then measures is its own work, not numba starting."""
    none_i8, none_u2 = np.zeros(0, np.int64), np.zeros(0, np.uint16)
    counts = np.zeros((1, 1, 1, 2), np.uint16)
    bin_events(none_i8, none_u2, none_u2, np.zeros(0, np.uint8), 0, 1.0, 0, 0, 1, counts, np.zeros(1, np.int64))
    colour = np.zeros(3, np.uint8)
    paint(counts[0], 1, np.zeros((1, 1, 3), np.uint8), 0, 0, colour, colour)


def frames(batches: Iterable[np.ndarray], width: int, height: int, timing: Timing) -> Iterator[Frame]:
    """Every frame of ``timing`` over the event ``batches`` (``EVENT_DTYPE``, in time order)."""
    binner = FrameBinner(width, height, timing)
    last_t: int | None = None
    for batch in batches:
        if batch.size:
            last_t = max(int(batch["t"].max()), last_t if last_t is not None else int(batch["t"].max()))
        yield from binner.push(batch)
    yield from binner.finish(last_t)
