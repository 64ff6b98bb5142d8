"""An edge box service: the systemd unit that runs a graph (or one node of it) and restarts it on failure.

The unit works as printed on a fresh box: systemd allocates its user when it starts (``DynamicUser``), so
there is no account to create; the folders it writes (state, numba's compiled kernels) are systemd's
``StateDirectory`` and ``CacheDirectory``, the only places such a user may write. The CURVE keys for its
links come from ``spikestream keys`` (:mod:`pipeline.security`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

from .errors import SpikestreamError


def systemd_unit(config: str | os.PathLike[str], *, node: str | None = None, user: str = "spikestream") -> str:
    """A systemd service running ``spikestream run CONFIG`` (or one node of it), restarted on failure,
    with a state directory for checkpoints and logs to the journal. ``user`` names the user systemd
    allocates for it (or the system user of that name, where one exists)."""
    cfg = Path(config).resolve()
    if not cfg.is_file():
        msg = f"config file not found: {cfg}"
        raise SpikestreamError(msg)
    from .config import load_graph  # a unit for a graph that does not load would only restart-loop

    graph = load_graph(cfg)
    if node is not None and node not in graph.nodes:
        msg = f"{cfg}: no node {node!r}; the graph has {', '.join(graph.nodes)}"
        raise SpikestreamError(msg)
    beside = Path(sys.executable).parent / "spikestream"  # the installation that prints the unit runs it
    exe = str(beside) if beside.is_file() else shutil.which("spikestream") or f"{sys.executable} -m pipeline.cli"
    hidden = [p for p in (Path(exe.split()[0]), cfg) if not _open_to_all(p)]
    what = f"node {shlex.quote(node)} --config" if node else "run"
    name = f"{cfg.stem}{'-' + node if node else ''}"
    warnings = "".join(
        f"# WARNING: {p} is not readable by other users: the service's own user cannot run it; install\n"
        "#          spikestream and its configs where every user may read them (/opt, /etc), see docs/edge.md\n"
        for p in hidden
    )
    return f"""# spikestream service for {cfg.name}{" (node " + node + ")" if node else ""}
{warnings}# Install: sudo cp spikestream-{name}.service /etc/systemd/system/ &&
#          sudo systemctl daemon-reload && sudo systemctl enable --now spikestream-{name}
[Unit]
Description=spikestream {name}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# a user allocated when the service starts: nothing to create; where a system user of this name
# exists, it is used instead
DynamicUser=yes
User={user}
# webcams (/dev/video*) belong to the group video; iniVation cameras need no group once iniVation's
# udev rules are installed (they open the camera to every user): docs/edge.md
SupplementaryGroups=video
# learned state is checkpointed here (atomically) and restored on start: /var/lib/spikestream/{name}
StateDirectory=spikestream/{name}
# numba caches the compiled kernels here (the installed package is read-only to the service)
CacheDirectory=spikestream/{name}
Environment=NUMBA_CACHE_DIR=%C/spikestream/{name}
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


def _open_to_all(path: Path) -> bool:
    """Whether a user of its own (the service's) may read ``path``: every folder above it searchable by
    others, the file readable by others."""
    try:
        if not path.resolve().stat().st_mode & stat.S_IROTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)
    except OSError:
        return False
