"""How to reach an MQTT broker: connection settings, the password, TLS, a client, and errors in words.

Shared by every MQTT node (``nodes.mqtt.sink``, ``nodes.mqtt.teach``). Credentials and certificates are
read when a node is built, so a wrong file is a config error at start-up, not a retry loop later.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from pipeline.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class BrokerParams:
    """How to reach an MQTT broker (shared by the MQTT sink and the teach source)."""

    host: str = "localhost"  #: broker host name or address
    port: int = 1883  #: broker TCP port (8883 is the usual TLS port)
    prefix: str = "spikestream"  #: topic prefix, without a trailing slash
    qos: int = 1  #: MQTT QoS of what this node publishes and subscribes to: 0 or 1 (2 is accepted)
    username: str | None = None  #: user name, when the broker requires one
    password: str | None = None  #: password in clear (prefer ``password_file``)
    password_file: str | None = None  #: file whose first line is the password
    tls: bool = False  #: connect with TLS (implied by ``ca_file``/``cert_file``)
    ca_file: str | None = None  #: CA certificate(s) to verify the broker with (PEM); default: system CAs
    cert_file: str | None = None  #: client certificate (PEM), for brokers that require one
    key_file: str | None = None  #: the client certificate's private key (PEM)
    tls_insecure: bool = False  #: do not verify the broker's certificate/host name (testing only)
    client_id: str | None = None  #: MQTT client identifier; default: ``spikestream-<node>-<random>``
    keepalive_s: int = 30  #: MQTT keep-alive, seconds (>= 5)
    reconnect_min_s: float = 0.5  #: first reconnect delay, seconds (> 0)
    reconnect_max_s: float = 30.0  #: reconnect delays double up to this, seconds (>= reconnect_min_s)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            msg = f"port must be in 1..65535, got {self.port}"
            raise ValueError(msg)
        if self.qos not in (0, 1, 2):
            msg = f"qos must be 0, 1 or 2, got {self.qos}"
            raise ValueError(msg)
        if not self.prefix or self.prefix.endswith("/") or any(c in self.prefix for c in "+#"):
            msg = f"prefix must be a topic without '+', '#' or a trailing '/', got {self.prefix!r}"
            raise ValueError(msg)
        if self.password is not None and self.password_file is not None:
            msg = "give password or password_file, not both"
            raise ValueError(msg)
        if (self.password is not None or self.password_file is not None) and self.username is None:
            msg = "a password needs a username"
            raise ValueError(msg)
        if self.key_file is not None and self.cert_file is None:
            msg = "key_file needs cert_file"
            raise ValueError(msg)
        if self.keepalive_s < 5:
            msg = f"keepalive_s must be >= 5, got {self.keepalive_s}"
            raise ValueError(msg)
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            msg = f"need 0 < reconnect_min_s <= reconnect_max_s, got {self.reconnect_min_s}, {self.reconnect_max_s}"
            raise ValueError(msg)

    @property
    def broker(self) -> str:
        """``host:port``, as the log and error messages name the broker."""
        return f"{self.host}:{self.port}"

    @property
    def uses_tls(self) -> bool:
        """Whether to connect with TLS: asked for, or implied by a CA or client certificate."""
        return self.tls or self.ca_file is not None or self.cert_file is not None


def read_password(params: BrokerParams) -> str | None:
    """The password from the config or its file (first line, without the line end)."""
    if params.password_file is None:
        return params.password
    try:
        text = Path(params.password_file).expanduser().read_text()
    except OSError as exc:
        msg = f"cannot read password_file {params.password_file!r}: {exc}"
        raise ConfigError(msg) from None
    return text.splitlines()[0] if text else ""


def tls_context(params: BrokerParams) -> ssl.SSLContext | None:
    """The TLS context the config asks for, or ``None`` for plain TCP. Raises ``ConfigError`` naming a
    certificate file that cannot be loaded."""
    if not params.uses_tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=params.ca_file)
        if params.cert_file is not None:
            ctx.load_cert_chain(params.cert_file, params.key_file)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(f for f in (params.ca_file, params.cert_file, params.key_file) if f)
        msg = f"cannot load TLS files ({files}): {exc}"
        raise ConfigError(msg) from None
    if params.tls_insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_client(
    params: BrokerParams, identifier: str, *, will: aiomqtt.Will | None = None, max_inflight: int | None = None
) -> aiomqtt.Client:
    """A (not yet connected) client for the broker of ``params``."""
    client = aiomqtt.Client(
        params.host,
        params.port,
        username=params.username,
        password=read_password(params),
        identifier=identifier,
        will=will,
        keepalive=params.keepalive_s,
        tls_context=tls_context(params),
        tls_insecure=params.tls_insecure if params.uses_tls else None,
        max_inflight_messages=max_inflight,
        timeout=10.0,
    )
    # aiomqtt warns about every publish beyond 10 unacknowledged ones; a window of them is the plan here
    client.pending_calls_threshold = max(10, (max_inflight or 0) + 10)
    return client


def describe_connect_error(params: BrokerParams, exc: BaseException) -> str:
    """A one-line, human explanation of a failed connection that names the broker."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "not authori" in lowered or "user name or password" in lowered or "code:5]" in lowered or "code:4]" in lowered:
        who = f"user {params.username!r}" if params.username else "anonymous clients"
        return f"MQTT broker {params.broker} refused {who}: {text} (check username/password)"
    if isinstance(exc, ssl.SSLError) or "ssl" in lowered or "certificate" in lowered:
        return f"TLS to MQTT broker {params.broker} failed: {text} (check ca_file/cert_file/tls_insecure)"
    return f"MQTT broker {params.broker} unreachable: {text}"
