"""Shared fixtures: where the real recordings are, and helpers every test may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import data_root

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real recordings folder (``$SPIKESTREAM_DATA``, else ``shared/recordings`` beside the checkout,
    whatever folder pytest runs in); skips the test, saying why, when it is absent."""
    root = data_root(REPO)
    if not root.is_dir():
        pytest.skip(f"real recordings not found at {root} (set SPIKESTREAM_DATA)")
    return root
