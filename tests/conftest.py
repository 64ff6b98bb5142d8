"""Shared fixtures: where the real recordings are, and helpers every test may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The folder of real recordings: ``$SPIKESTREAM_DATA`` or ``../shared/recordings``."""
    env = os.environ.get("SPIKESTREAM_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "recordings")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real recordings folder; skips the test, saying why, when it is absent."""
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real recordings not found at {root} (set SPIKESTREAM_DATA)")
    return root
