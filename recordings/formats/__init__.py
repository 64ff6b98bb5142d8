"""The event-file formats, one module each, reading and (where we write it) writing.

``nmnist`` (N-MNIST .bin), ``aedat2`` (jAER), ``aedat3`` (AEDAT 3.1), ``aedat4`` (AEDAT 4.0), ``evt``
(Prophesee RAW EVT 2.0 / 3.0), ``dat`` (Prophesee DAT) and ``npy`` (numpy arrays of events). ``header``
reads the text headers, ``reading`` drives the numba decoders of ``kernels`` over a memory map, and
``writing`` holds the writers' event check and atomic write. ``recordings.detect`` tells the formats apart.

Every reader returns a ``recordings.recording.Recording`` that yields batches of
``pipeline.events.EVENT_DTYPE`` in file order: ``t`` in microseconds, origin top-left, ``p`` 1 = ON. The
sensor size comes from the header or the chip name; when the file does not say, it is ``None`` (never a
guessed default), and where it is known, an address outside it is a corrupt file. A truncated or corrupt
file raises ``RecordingError`` naming the file and the byte offset.
"""
