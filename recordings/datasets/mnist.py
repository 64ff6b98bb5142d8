"""The MNIST IDX files (LeCun et al. 1998): four files per data set, gzip-compressed or plain.

IDX layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte), a byte with the number of
dimensions, one uint32 per dimension, then the data in C order. MNIST labels have the magic number
2049 (0x00000801: ubyte, 1 dimension), images 2051 (0x00000803: ubyte, 3 dimensions, N x 28 x 28).
Offsets in error messages count bytes of the (decompressed) IDX content.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError

LABELS_MAGIC = 2049
IMAGES_MAGIC = 2051

_PREFIX = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    """The IDX content of ``path``, decompressed when it is gzip (detected by its magic bytes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read ({exc})"
        raise RecordingError(msg) from exc
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        msg = f"{path}: corrupt or truncated gzip stream ({exc}); compressed size {len(raw)} B"
        raise RecordingError(msg) from exc


def read_idx(path: str | Path, *, magic: int, dims: tuple[int | None, ...]) -> np.ndarray:
    """Read one IDX file of unsigned bytes, checking its magic number and dimensions.

    ``dims`` gives the expected size of each dimension (None = any). Raises ``RecordingError`` naming
    the file and byte offset when the header is wrong or the data is truncated or too long.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        msg = f"{path}: truncated IDX header at byte offset {len(data)} (need 4 bytes of magic)"
        raise RecordingError(msg)
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        msg = f"{path}: bad IDX magic number {got} at byte offset 0, expected {magic}"
        raise RecordingError(msg)
    ndim = len(dims)
    header = 4 + 4 * ndim
    if len(data) < header:
        msg = f"{path}: truncated IDX header at byte offset {len(data)} (need {header} bytes for {ndim} dimensions)"
        raise RecordingError(msg)
    shape = tuple(int(x) for x in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    for k, (size, want) in enumerate(zip(shape, dims, strict=True)):
        if want is not None and size != want:
            msg = f"{path}: dimension {k} is {size} at byte offset {4 + 4 * k}, expected {want}"
            raise RecordingError(msg)
    n = int(np.prod(shape, dtype=np.int64))
    if len(data) < header + n:
        msg = (
            f"{path}: truncated IDX data: file ends at byte offset {len(data)}, "
            f"expected {header + n} bytes for shape {shape}"
        )
        raise RecordingError(msg)
    if len(data) > header + n:
        msg = f"{path}: {len(data) - header - n} unexpected trailing bytes at byte offset {header + n}"
        raise RecordingError(msg)
    return np.frombuffer(data, dtype=np.uint8, count=n, offset=header).reshape(shape).copy()


def _find(root: Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``root`` (also the ``train-images.idx3-ubyte`` spelling)."""
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        if (root / name).is_file():
            return root / name
    msg = f"{root}: no {stem}[.gz] found"
    raise RecordingError(msg)


def load_mnist(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,) of the ``"train"`` or ``"test"`` split."""
    if split not in _PREFIX:
        msg = f"split must be 'train' or 'test', got {split!r}"
        raise ValueError(msg)
    root = Path(root)
    prefix = _PREFIX[split]
    img_path = _find(root, f"{prefix}-images-idx3-ubyte")
    lab_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(img_path, magic=IMAGES_MAGIC, dims=(None, 28, 28))
    labels = read_idx(lab_path, magic=LABELS_MAGIC, dims=(None,))
    if len(images) != len(labels):
        msg = f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels"
        raise RecordingError(msg)
    if len(labels) and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        msg = f"{lab_path}: label {labels[bad]} > 9 at byte offset {8 + bad}"
        raise RecordingError(msg)
    return images, labels
