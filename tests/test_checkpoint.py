"""Checkpoints are atomic and refuse corrupt files with the path named."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.checkpoint import load_state, save_state
from pipeline.errors import CheckpointError


def test_round_trip_and_overwrite(tmp_path):
    p = tmp_path / "s" / "node.npz"
    save_state(p, {"w": np.arange(6.0).reshape(2, 3), "n": np.int64(7)})
    save_state(p, {"w": np.ones(3)})
    back = load_state(p)
    assert list(back) == ["w"] and np.array_equal(back["w"], np.ones(3))
    assert [f.name for f in p.parent.iterdir()] == ["node.npz"]  # no temporary files left


def test_corrupt_and_missing(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(CheckpointError, match=r"bad\.npz is unreadable or corrupt"):
        load_state(p)
    with pytest.raises(CheckpointError, match=r"checkpoint not found"):
        load_state(tmp_path / "none.npz")
