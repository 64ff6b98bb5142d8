"""N-MNIST dataset folders: ``<root>/<label>/<index>.bin``, or a root holding ``Train/`` and ``Test/`` splits.

The layout is the one of the original ``Train.zip``/``Test.zip`` (Orchard et al. 2015): one folder per digit,
files named by their 1-based MNIST index. Samples are ordered by split (Train before Test), then index,
then label, so that iterating a split replays it in MNIST order (labels interleaved, as a learner wants).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import RecordingError
from recordings.formats.nmnist import read_nmnist_bytes

#: Split folder names recognised under a dataset root, in replay order.
SPLITS = ("Train", "Test")


@dataclass(frozen=True, kw_only=True)
class NMnistSample:
    """One sample file: its path, digit label, split name (``None`` for a bare label-folder root) and index."""

    path: Path
    label: int
    split: str | None
    index: int


class NMnistDataset:
    """The samples of an N-MNIST folder. ``load(i)`` decodes sample ``i`` into ``EVENT_DTYPE`` (34x34 sensor).

    ``split`` keeps only one split (``"Train"`` or ``"Test"``) of a root that has both.
    """

    width = 34
    height = 34

    def __init__(self, root: str | Path, *, split: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            msg = f"{self.root}: not a folder (expected an N-MNIST dataset folder)"
            raise RecordingError(msg)
        split_dirs = [(name, self.root / name) for name in SPLITS if (self.root / name).is_dir()]
        if split is not None:
            if split not in SPLITS:
                msg = f"split must be one of {SPLITS}, got {split!r}"
                raise ValueError(msg)
            split_dirs = [(n, d) for n, d in split_dirs if n == split]
            if not split_dirs:
                msg = f"{self.root}: has no {split}/ folder"
                raise RecordingError(msg)
        samples: list[NMnistSample] = []
        if split_dirs:
            for name, folder in split_dirs:
                samples.extend(sorted(_scan(folder, name), key=_index_key))
        else:
            samples = sorted(_scan(self.root, None), key=_index_key)
        if not samples:
            msg = f"{self.root}: no <label>/<index>.bin files found (N-MNIST layout)"
            raise RecordingError(msg)
        self.samples: list[NMnistSample] = samples
        self.labels: np.ndarray = np.array([s.label for s in samples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> np.ndarray:
        """The events of sample ``i`` (``EVENT_DTYPE``, timestamps from the file)."""
        sample = self.samples[i]
        try:
            raw = sample.path.read_bytes()
        except OSError as exc:
            msg = f"{sample.path}: cannot read ({exc})"
            raise RecordingError(msg) from exc
        return read_nmnist_bytes(sample.path, raw)

    def label_counts(self) -> dict[int, int]:
        """Number of samples per label, labels ascending."""
        return dict(sorted(Counter(int(v) for v in self.labels).items()))

    def split_counts(self) -> dict[str, int]:
        """Number of samples per split (``"all"`` for a root without split folders)."""
        return dict(Counter(s.split or "all" for s in self.samples))


def _index_key(s: NMnistSample) -> tuple[int, int]:
    return (s.index, s.label)


def _scan(folder: Path, split: str | None) -> list[NMnistSample]:
    found: list[NMnistSample] = []
    for label_dir in folder.iterdir():
        if not (label_dir.is_dir() and label_dir.name.isdigit()):
            continue
        label = int(label_dir.name)
        found.extend(
            NMnistSample(path=f, label=label, split=split, index=int(f.stem))
            for f in label_dir.iterdir()
            if f.suffix.lower() == ".bin" and f.stem.isdigit()
        )
    return found
