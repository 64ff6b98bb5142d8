"""An edge box service: the systemd unit that runs a graph (or one node of it) and restarts it on failure.

The CURVE keys for its links come from ``spikestream keys`` (:mod:`pipeline.security`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from .errors import SpikestreamError


def systemd_unit(config: str | os.PathLike[str], *, node: str | None = None, user: str = "spikestream") -> str:
    """A systemd service running ``spikestream run CONFIG`` (or one node of it), restarted on failure,
    with a state directory for checkpoints and logs to the journal."""
    cfg = Path(config).resolve()
    if not cfg.is_file():
        msg = f"config file not found: {cfg}"
        raise SpikestreamError(msg)
    from .config import load_graph  # a unit for a graph that does not load would only restart-loop

    graph = load_graph(cfg)
    if node is not None and node not in graph.nodes:
        msg = f"{cfg}: no node {node!r}; the graph has {', '.join(graph.nodes)}"
        raise SpikestreamError(msg)
    exe = shutil.which("spikestream") or f"{sys.executable} -m pipeline.cli"
    what = f"node {shlex.quote(node)} --config" if node else "run"
    name = f"{cfg.stem}{'-' + node if node else ''}"
    return f"""# spikestream service for {cfg.name}{" (node " + node + ")" if node else ""}
# Install: sudo cp spikestream-{name}.service /etc/systemd/system/ &&
#          sudo systemctl daemon-reload && sudo systemctl enable --now spikestream-{name}
[Unit]
Description=spikestream {name}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
# learned state is checkpointed here (atomically) and restored on start
StateDirectory=spikestream/{name}
ExecStart={exe} {what} {shlex.quote(str(cfg))} --state ${{STATE_DIRECTORY}} --results ${{STATE_DIRECTORY}}/results.json
# SIGTERM lets every node flush and checkpoint; give it time before SIGKILL
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=5
# small CPUs: one thread per process for numpy/numba; the graph's processes share the cores
Environment=NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONUNBUFFERED=1
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
"""
