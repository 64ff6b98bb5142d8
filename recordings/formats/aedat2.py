"""jAER AEDAT 2.0 files: ``#`` header lines, then big-endian (int32 address, int32 timestamp) pairs.

Coordinates. jAER stores y with the origin at the bottom. We flip it, ``y = H-1-y_raw``, and keep
``x = x_raw`` for both DAVIS and DVS128. For DAVIS this is exactly the mapping of iniVation's own DV <->
jAER converter (aedat4to2: ``y_raw = H-1-y_dv``, ``x_raw = x_dv``), so a DAVIS recording read here matches
what dv-processing gives for the same camera. jAER *displays* both chips mirrored in x (``W-1-x_raw``);
since for DAVIS the DV image is that display mirrored back, applying the same relation to the DVS128 gives
``x = x_raw`` again. One rule for every chip, and the one dv-processing's top-left convention implies;
readers who want jAER's on-screen orientation flip x themselves.

DVS128 polarity is inverted in the raw address (raw 0 = ON); DAVIS bit 31 (APS/IMU) and bit 10 (external
input) words, and DVS128 bit 15 (special) words, are skipped but their timestamps still drive the
wrap-around unwrap. Timestamps wrap at 2**32: a drop of more than 2**31 counts as one wrap.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recordings.formats.header import chip_size, read_header
from recordings.formats.kernels.aedat import LAYOUT_DAVIS, LAYOUT_DVS128, aedat2_decode
from recordings.formats.reading import kernel_stream, memmap
from recordings.recording import Recording

log = logging.getLogger(__name__)

_RECORD = 8


def open_aedat2(path: Path) -> Recording:
    """A jAER AEDAT 2.0 file (DAVIS or DVS128 address layout, chosen from the ``AEChip`` header line)."""
    header = read_header(path, b"#")
    chip = None
    for line in header.lines:
        m = re.match(r"\s*AEChip:\s*(\S+)", line)
        if m:
            chip = m.group(1)
    width, height = chip_size(chip) if chip else (None, None)
    if chip is None:
        layout = _guess_layout(path, header.data_offset)
        if layout == LAYOUT_DVS128:
            width, height = 128, 128
    elif "dvs128" in chip.lower():
        layout = LAYOUT_DVS128
    else:
        layout = LAYOUT_DAVIS
        if width is None:
            log.warning("%s: unknown chip %s: sensor size unknown, y left bottom-up as stored", path, chip)
    name = "dvs128" if layout == LAYOUT_DVS128 else "davis"
    meta = {"chip": chip, "layout": name, "header_lines": len(header.lines), "data_offset": header.data_offset}
    w = width or 0
    h = height or 0

    def call(buf: np.ndarray, pos: int, stop: int, out: np.ndarray, state: np.ndarray) -> tuple[int, int, int, int]:
        return aedat2_decode(buf, pos, stop, layout, w, h, out, state)

    def source(batch_size: int) -> Iterator[np.ndarray]:
        state = np.array([-1, 0], dtype=np.int64)
        return kernel_stream(path, header.data_offset, _RECORD, call, state, batch_size)

    return Recording(path=path, format="aedat2", width=width, height=height, metadata=meta, _source=source)


def _guess_layout(path: Path, data_offset: int) -> int:
    """No ``AEChip`` line: a DVS128 when every address fits in 16 bits (15 address bits + special)."""
    buf = memmap(path, data_offset)
    n = buf.size // _RECORD
    if n == 0:
        return LAYOUT_DVS128
    words = buf[: n * _RECORD].view(">u4").reshape(n, 2)
    wide = int(np.count_nonzero(words[:, 0] >= (1 << 16)))
    if wide == 0:
        log.info("%s: no AEChip line; addresses fit 15 bits, decoding as DVS128", path)
        return LAYOUT_DVS128
    if wide * 100 < n:
        # A DAVIS stream has y in the high bits of nearly every address; a handful of wide words in a
        # DVS128 stream are damage, which the decoder then reports with its offset (the DAVIS layout
        # would quietly turn the whole file into other events)
        log.warning("%s: no AEChip line; %d of %d addresses are wider than 16 bits: decoding as DVS128", path, wide, n)
        return LAYOUT_DVS128
    log.warning("%s: no AEChip line and addresses wider than 16 bits: decoding as DAVIS, size unknown", path)
    return LAYOUT_DAVIS
