"""Event files and datasets: open, detect, write, describe and convert them.

``files`` opens any supported file (``open_recording``) and writes the formats we write
(``write_recording``); ``detect`` tells the formats apart; ``formats/`` holds one module per format;
``recording`` the open-file object every reader returns; ``summary`` and ``conversion`` are
``spikestream info`` and ``spikestream convert``; ``datasets/`` reads N-MNIST folders and the MNIST IDX
files; ``messages`` is the message log of the ``record`` sink and ``playback`` source.

Formats (``Recording.format``): ``nmnist`` (N-MNIST .bin), ``aedat4`` (AEDAT 4.0), ``aedat3``
(AEDAT 3.1), ``aedat2`` (jAER), ``evt2``/``evt3`` (Prophesee RAW), ``dat`` (Prophesee DAT), ``npy``
(numpy array of ``pipeline.events.EVENT_DTYPE``).
"""

from recordings.conversion import convert
from recordings.datasets.nmnist import NMnistDataset, NMnistSample
from recordings.detect import FORMATS, detect_format
from recordings.files import WRITE_SUFFIXES, open_recording, sensor_size, write_recording
from recordings.recording import Recording
from recordings.summary import info

__all__ = [
    "FORMATS",
    "WRITE_SUFFIXES",
    "NMnistDataset",
    "NMnistSample",
    "Recording",
    "convert",
    "detect_format",
    "info",
    "open_recording",
    "sensor_size",
    "write_recording",
]
