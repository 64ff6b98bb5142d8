"""CURVE security for links that cross hosts: key files (written and read), each node's CURVE settings,
and the authenticator that admits only the listed client keys.

``spikestream keys NAME`` writes ``NAME.key`` (the public key, for peers) and ``NAME.key_secret`` (the key
pair, mode 0600). A node's ``curve`` table names those files; see :func:`curve_settings`.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import NamedTuple

import zmq
import zmq.asyncio

from .config import GraphConfig
from .errors import ConfigError, SpikestreamError
from .transport import Curve

log = logging.getLogger("spikestream.runner")

CURVE_KEYS = ("secret_key", "server_key", "allow")


def write_keypair(name: str, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Create ``NAME.key`` (public, to give to peers) and ``NAME.key_secret`` (mode 0600, keep it)."""
    if not zmq.has("curve"):
        msg = "this libzmq was built without CURVE support"
        raise SpikestreamError(msg)
    if not name or "/" in name:
        msg = f"a key name is a plain file name, got {name!r}"
        raise SpikestreamError(msg)
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    pub_path, sec_path = d / f"{name}.key", d / f"{name}.key_secret"
    for p in (pub_path, sec_path):
        if p.exists():
            msg = f"{p} exists; remove it first (keys are never overwritten)"
            raise SpikestreamError(msg)
    pub_path.write_text(f'# spikestream CURVE public key "{name}": give it to peers\npublic = "{public.decode()}"\n')
    fd = os.open(sec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f'# spikestream CURVE key pair "{name}": keep this file secret\n'
            f'public = "{public.decode()}"\nsecret = "{secret.decode()}"\n'
        )
    return pub_path, sec_path


def _load_key_file(path: str, where: str) -> tuple[bytes, bytes | None]:
    """Read a key file written by ``spikestream keys``: ``public`` and (for secret files) ``secret``."""
    try:
        doc = tomllib.loads(Path(path).expanduser().read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"{where}: cannot read key file {path}: {exc}"
        raise ConfigError(msg) from None
    public = doc.get("public")
    if not isinstance(public, str) or len(public) != 40:
        msg = f"{where}: key file {path} has no valid 'public' key (40 z85 characters)"
        raise ConfigError(msg)
    secret = doc.get("secret")
    return public.encode(), secret.encode() if isinstance(secret, str) else None


class CurveSettings(NamedTuple):
    """One node's CURVE settings; all None for a node with plain links."""

    server: Curve | None  # for its input
    client: Curve | None  # for its outputs
    allowed: list[bytes] | None  # the client public keys its input accepts (None: any that knows its key)


PLAIN = CurveSettings(None, None, None)


def curve_settings(graph: GraphConfig, name: str) -> CurveSettings:
    """Read the CURVE settings of node ``name`` from its ``curve`` table.

    ``secret_key`` names the node's own key pair file; with upstream links its input becomes a CURVE
    server. ``allow`` lists the only client public keys it accepts; without it any client that knows the
    server's public key gets in, encrypted. ``server_key`` (the downstream node's public key file) makes the
    outputs CURVE clients, so all downstream nodes must share that key; without it the outputs are plain
    (local links on the same box, say)."""
    spec = graph.nodes[name]
    if not spec.curve:
        return PLAIN
    where = f"{graph.source} [nodes.{name}.curve]"
    for key in spec.curve:
        if key not in CURVE_KEYS:
            msg = f"{where}: unknown key {key!r} (known: {', '.join(sorted(CURVE_KEYS))})"
            raise ConfigError(msg)
    if "secret_key" not in spec.curve:
        msg = f"{where}: needs 'secret_key' (a key file from 'spikestream keys')"
        raise ConfigError(msg)
    public, secret = _load_key_file(str(spec.curve["secret_key"]), where)
    if secret is None:
        msg = f"{where}: {spec.curve['secret_key']} holds no secret key"
        raise ConfigError(msg)
    server = Curve(public, secret) if graph.upstream(name) else None
    client = None
    server_key = spec.curve.get("server_key")
    if server_key is not None:
        if not graph.downstream(name):
            msg = f"{where}: 'server_key' is for a node's outputs, and this node has no downstream link"
            raise ConfigError(msg)
        client = Curve(public, secret, _load_key_file(str(server_key), where)[0])
    allowed = None
    if "allow" in spec.curve:
        allowed = [_load_key_file(str(p), where)[0] for p in spec.curve["allow"]]
    return CurveSettings(server, client, allowed)


class Authenticator:
    """A ZAP handler that accepts only the listed CURVE client keys and logs refusals."""

    def __init__(self, ctx: zmq.asyncio.Context, node: str, allowed: list[bytes]) -> None:
        from zmq.auth.asyncio import AsyncioAuthenticator

        self.node = node
        self.auth = AsyncioAuthenticator(ctx, log=logging.getLogger(f"spikestream.auth.{node}"))
        self.auth.start()
        allowed_set = set(allowed)

        class _Policy:
            # pyzmq calls callback(domain, key) with the client's z85 public key
            def callback(self, domain: str, key: bytes) -> bool:  # noqa: ARG002 - every domain is treated alike
                ok = key in allowed_set
                if not ok:
                    log.warning("%s: refused a CURVE peer with an unknown public key", node)
                return ok

        self.auth.configure_curve_callback(domain="*", credentials_provider=_Policy())

    def stop(self) -> None:
        """Stop the ZAP handler's thread, once the sockets it guarded are closed."""
        self.auth.stop()
