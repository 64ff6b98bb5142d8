"""Numba decoders of the binary event formats, one module per family: ``nmnist`` (N-MNIST records, both
ways), ``aedat`` (AEDAT 2.0 words and AEDAT 3.1 polarity packets), ``prophesee`` (EVT 2.0, EVT 3.0, DAT)
and ``unwrap`` (the 32-bit timestamp unwrap that AEDAT 2.0 and DAT share). Only ``@njit`` functions over
plain arrays and scalars, and their constants, live here: no classes, logging or I/O (STYLE.md, "kernel
vs stage").

The contract of every resumable decoder: it takes the raw bytes of a file (``uint8``, usually a memory
map), a start/stop byte position, the output record array ``out`` (``EVENT_DTYPE``; writing whole records
measured 3x faster than writing four strided field views) and a small ``int64`` state array that carries
what a format remembers from one word to the next (timestamp offsets, the last address ...). It decodes
from ``pos`` until ``stop`` or until ``out`` has no room for the next record, and returns
``(events_written, next_pos, error, error_pos)``: ``error`` is one of the ``ERR_*`` codes below and
``error_pos`` the byte position (relative to the start of ``buf``) of the offending record; the caller
turns it into a ``RecordingError`` naming file and offset. Calling again with the returned position and
the same state continues the stream exactly, so batch boundaries never change the decoded events.
"""

ERR_NONE = 0
#: A word type that the format does not define (corrupt data, or a file of another format).
ERR_BAD_TYPE = 1
#: A decoded address outside the sensor size that the header or the chip declares.
ERR_BAD_ADDRESS = 2
#: A packet header that cannot be right (AEDAT 3.1: negative sizes, a packet running past the end).
ERR_BAD_PACKET = 3
