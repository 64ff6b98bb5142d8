"""Video files: MP4 through OpenCV's ``VideoWriter``, GIF through Pillow; the suffix of the name decides.

MP4 is MPEG-4 part 2 (``mp4v``): the codec every opencv-python wheel can write (they ship no H.264
encoder). GIF stores frame delays in hundredths of a second, so each frame's delay is rounded such that
the frames' total keeps to the clock (at 30 frames/s: 30, 30, 40 ms, ...); a GIF is held in memory until
it is written, which suits the short clips GIFs are for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from pipeline.errors import SpikestreamError

#: The suffixes ``open_video`` writes.
VIDEO_SUFFIXES = (".mp4", ".gif")


class VideoOut(Protocol):
    """Where frames (BGR ``uint8``, all of one size) go."""

    def write(self, frame: np.ndarray) -> None:
        """Append one frame."""

    def close(self) -> None:
        """Finish the file."""


class Mp4Out:
    """An MP4 file written frame by frame by OpenCV."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        self.path = path
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
        if not self._writer.isOpened():
            msg = f"{path}: OpenCV cannot write an MP4 file here (is the folder writable?)"
            raise SpikestreamError(msg)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame."""
        self._writer.write(frame)

    def close(self) -> None:
        """Finish the file."""
        self._writer.release()


class GifOut:
    """An animated GIF, looping, written by Pillow when closed."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._frames: list[Image.Image] = []

    def write(self, frame: np.ndarray) -> None:
        """Keep one frame (as 8-bit palette colours: the few colours of a render survive exactly)."""
        rgb = Image.fromarray(np.ascontiguousarray(frame[:, :, ::-1]))
        self._frames.append(rgb.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE))

    def delays_ms(self) -> list[int]:
        """Each frame's delay in ms, in whole hundredths of a second that add up to the clock."""
        ticks = [round((k + 1) * 100 / self.fps) - round(k * 100 / self.fps) for k in range(len(self._frames))]
        return [10 * max(t, 1) for t in ticks]

    def close(self) -> None:
        """Write the file (nothing when no frame came)."""
        if not self._frames:
            msg = f"{self.path}: no frames to write (the recording has no events in the chosen span)"
            raise SpikestreamError(msg)
        first, *rest = self._frames
        # Pillow merges a frame identical to the one before into it (adding the delays); the time stamp
        # makes every frame of a render differ, so a reader counts exactly the frames written
        first.save(
            self.path,
            save_all=True,
            append_images=rest,
            duration=self.delays_ms(),
            loop=0,
            optimize=False,
            disposal=1,
        )
        self._frames = []


def open_video(path: str | Path, fps: float, width: int, height: int) -> VideoOut:
    """A writer for ``path``, chosen by its suffix (``.mp4`` or ``.gif``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        msg = f"{path}: cannot write {suffix or 'a name without a suffix'}; end the name in .mp4 or .gif"
        raise SpikestreamError(msg)
    if not path.parent.is_dir():
        msg = f"{path}: the folder {path.parent} does not exist"
        raise SpikestreamError(msg)
    if suffix == ".gif":
        return GifOut(path, fps)
    return Mp4Out(path, fps, width, height)
