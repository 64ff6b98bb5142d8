"""Deployment helpers: CURVE key pairs for authenticated, encrypted links, and a systemd unit."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import zmq

from .errors import SpikestreamError


def write_keypair(name: str, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Create ``NAME.key`` (public, to give to peers) and ``NAME.key_secret`` (mode 0600, keep it)."""
    if not zmq.has("curve"):
        raise SpikestreamError("this libzmq was built without CURVE support")
    if not name or "/" in name:
        raise SpikestreamError(f"a key name is a plain file name, got {name!r}")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    pub_path, sec_path = d / f"{name}.key", d / f"{name}.key_secret"
    for p in (pub_path, sec_path):
        if p.exists():
            raise SpikestreamError(f"{p} exists; remove it first (keys are never overwritten)")
    pub_path.write_text(f'# spikestream CURVE public key "{name}": give it to peers\npublic = "{public.decode()}"\n')
    fd = os.open(sec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f'# spikestream CURVE key pair "{name}": keep this file secret\n'
            f'public = "{public.decode()}"\nsecret = "{secret.decode()}"\n'
        )
    return pub_path, sec_path


def systemd_unit(config: str | os.PathLike[str], *, node: str | None = None, user: str = "spikestream") -> str:
    """A systemd service running ``spikestream run CONFIG`` (or one node of it), restarted on failure,
    with a state directory for checkpoints and logs to the journal."""
    cfg = Path(config).resolve()
    if not cfg.is_file():
        raise SpikestreamError(f"config file not found: {cfg}")
    from .config import load_graph  # a unit for a graph that does not load would only restart-loop

    graph = load_graph(cfg)
    if node is not None and node not in graph.nodes:
        raise SpikestreamError(f"{cfg}: no node {node!r}; the graph has {', '.join(graph.nodes)}")
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
