"""Shared fixtures: where the real recordings are, and resources a test owns until it ends.

Graphs the tests share are built in ``graphs.py``; the Mosquitto broker lives in ``mqtt_broker.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from pipeline.config import data_root

REPO = Path(__file__).resolve().parent.parent
#: The system's Chromium (Debian's package), which Playwright drives: no browser download.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real recordings folder (``$SPIKESTREAM_DATA``, else ``shared/recordings`` beside the checkout,
    whatever folder pytest runs in); skips the test, saying why, when it is absent."""
    root = data_root(REPO)
    if not root.is_dir():
        pytest.skip(f"real recordings not found at {root} (set SPIKESTREAM_DATA)")
    return root


@pytest.fixture
def zmq_socket() -> Iterator[Callable[[int], zmq.Socket[bytes]]]:
    """Makes ZeroMQ sockets (``zmq_socket(zmq.SUB)``) that the test owns: when it ends, passed or failed,
    each one is closed with linger 0, so that no test waits on undelivered messages, and the context ends."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    made: list[zmq.Socket[bytes]] = []

    def make(kind: int) -> zmq.Socket[bytes]:
        made.append(ctx.socket(kind))
        return made[-1]

    yield make
    for sock in made:
        sock.close(linger=0)
    ctx.term()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for the module's tests (skipped, saying why, without it or Playwright)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield b
        b.close()
