"""A real Mosquitto broker for tests and benchmarks, on a free 127.0.0.1 port, with everything it writes
(config, password file, persistence database, log) under a given folder.

Use it as a context manager from a fixture::

    @pytest.fixture
    def broker(tmp_path):
        with running_broker(tmp_path) as b:
            yield b

``Broker.kill()`` / ``Broker.start()`` stop and restart it on the same port (persistence is on, so
sessions of subscribers with ``clean_session=False`` and their queued QoS 1 messages survive a SIGTERM).
``tls=True`` makes a throw-away CA and server certificate (``Broker.ca_file``) and listens with TLS only.
When no ``mosquitto`` binary is installed, ``running_broker`` skips the test and says why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphs import free_port

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of the broker binary: ``$MOSQUITTO``, the usual Debian places, or ``PATH``."""
    env = os.environ.get("MOSQUITTO")
    if env and Path(env).is_file():
        return env
    for cand in MOSQUITTO_CANDIDATES:
        if Path(cand).is_file():
            return cand
    return shutil.which("mosquitto")


def make_certificates(folder: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 (``server.crt``/``server.key``) signed by it,
    made with the ``openssl`` command; returns the CA certificate's path (skips when openssl is missing)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not found: cannot make test certificates")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=spikestream test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
    )  # fmt: skip
    return folder / "ca.crt"


class Broker:
    """One Mosquitto process; ``host``/``port`` stay the same across ``kill()``/``start()``."""

    def __init__(self, binary: str, folder: Path, users: dict[str, str] | None = None, tls: bool = False) -> None:
        self.binary = binary
        self.folder = folder
        self.host = "127.0.0.1"
        self.port = free_port()
        self.users = dict(users or {})
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / "mosquitto.log"
        self.conf_path = folder / "mosquitto.conf"
        self.ca_file: Path | None = make_certificates(folder) if tls else None
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_interval 0",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 200000",
            "set_tcp_nodelay true",
        ]
        if self.ca_file is not None:
            lines += [f"cafile {self.ca_file}", f"certfile {folder / 'server.crt'}", f"keyfile {folder / 'server.key'}"]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to user 'mosquitto', who cannot read tmp_path
        if self.users:
            pw = folder / "passwd"
            pw.write_text("")
            passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for user, password in self.users.items():
                subprocess.run([passwd, "-b", str(pw), user, password], check=True, capture_output=True)
            pw.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf_path.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts TCP connections."""
        if self.running:
            return
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                msg = f"mosquitto exited with {self.proc.returncode}: {err} {self.log()}"
                raise RuntimeError(msg)
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return
            time.sleep(0.02)
        msg = f"mosquitto did not listen on {self.host}:{self.port} within {timeout_s} s"
        raise RuntimeError(msg)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Stop the broker (SIGTERM: it saves its persistence database first; SIGKILL: it does not)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_broker(folder: Path, users: dict[str, str] | None = None, tls: bool = False) -> Iterator[Broker]:
    """A started broker under ``folder`` (skips the calling test when Mosquitto is not installed)."""
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto binary not found (apt install mosquitto, or set $MOSQUITTO)")
    broker = Broker(binary, folder / "mosquitto", users, tls=tls)
    try:
        broker.start()  # inside: a broker that started but never listened is killed too
        yield broker
    finally:
        broker.kill()
