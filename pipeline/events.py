"""The record types that travel through spikestream, defined once.

Every batch is a numpy structured array of one of these dtypes. Readers and devices convert to
``EVENT_DTYPE`` at the edge; nothing else in the code base uses ``(N, 4)`` arrays or tuples.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: An address event. ``t`` in microseconds, origin of ``x``/``y`` top-left, ``p`` 1 = ON (brighter), 0 = OFF.
#: The record is aligned (16 bytes, 3 of them padding): numpy field access on the packed 13-byte layout
#: measured about ten times slower, which costs more than the extra bytes on the wire.
EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")], align=True)

#: A spike between network stages: ``c`` is the channel (feature map, or neuron index for a fully
#: connected layer, where ``x = y = 0``); ``t`` is the timestamp of the input event that caused it.
SPIKE_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("c", "<u2")], align=True)

#: "From ``t`` on, the scene shows class ``label``" (-1 = unknown). ``train`` = 1 when a classifier may
#: learn from the segment, 0 when it is for evaluation only (the classifier must not see the label).
LABEL_DTYPE = np.dtype([("t", "<i8"), ("label", "<i4"), ("train", "u1")], align=True)

UNKNOWN_LABEL = -1


def prediction_dtype(classes: int) -> np.dtype:
    """Dtype of a ``predictions`` record for ``classes`` classes.

    ``decision`` is 1 for the final decision of a labelled segment (then ``truth`` is that segment's
    label and ``train`` says whether it was a training segment) and 0 for a running prediction
    emitted on a classifier spike (then ``truth`` is -1).
    """
    if classes < 1:
        msg = f"classes must be >= 1, got {classes}"
        raise ValueError(msg)
    return np.dtype(
        [
            ("t", "<i8"),
            ("label", "<i4"),
            ("truth", "<i4"),
            ("decision", "u1"),
            ("train", "u1"),
            ("scores", "<f4", (classes,)),
        ],
        align=True,
    )


def copy_records(a: np.ndarray) -> np.ndarray:
    """A copy of a record array. ``ndarray.copy`` on structured dtypes goes field by field (about
    20 µs per 1,000 records in numpy 2.4); copying the raw bytes is a memcpy."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint8).copy().view(a.dtype) if a.size else a.copy()


def empty_events(n: int = 0) -> np.ndarray:
    """A zero-filled event batch of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(t: ArrayLike, x: ArrayLike, y: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Build an event batch from four equally long array-likes (converted, range-checked)."""
    t = np.asarray(t)
    n = t.shape[0]
    for name, arr in (("x", x), ("y", y), ("p", p)):
        if np.shape(arr) != (n,):
            msg = f"{name} has shape {np.shape(arr)}, expected ({n},) like t"
            raise ValueError(msg)
    out = np.empty(n, dtype=EVENT_DTYPE)
    out["t"] = t
    out["x"] = x
    out["y"] = y
    out["p"] = p
    return out
