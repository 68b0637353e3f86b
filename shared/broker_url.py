"""Where a client finds the MQTT broker and how it proves who it is, shared by kiosk and cloud.

A broker URL is ``mqtt://[USER[:PASSWORD]@]HOST[:PORT]`` or the same with ``mqtts://`` (TLS;
ports default to 1883 and 8883). A fleet broker (``deploy/mosquitto/``) takes no passwords: each
client shows a certificate of the fleet CA whose common name is its identity. Username and
password remain for an operator whose broker is set up that way; they only travel over TLS unless
the broker is on the same host.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUrlError(ValueError):
    """A broker URL that is not ``mqtt(s)://[USER[:PASSWORD]@]HOST[:PORT]``."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A parsed broker URL. The password is kept out of ``repr`` (it ends up in logs)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_broker_url(url: str) -> BrokerUrl:
    """Parses ``mqtt(s)://[USER[:PASSWORD]@]HOST[:PORT]``; USER and PASSWORD are %-decoded.

    Raises:
        BrokerUrlError: another scheme, no host, a bad port, a path, query or fragment, or a
            password without a user.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise BrokerUrlError(str(error)) from None
    if parts.scheme not in MQTT_PORTS or not parts.hostname:
        raise BrokerUrlError(
            f"expected mqtt://[USER[:PASSWORD]@]HOST[:PORT] or mqtts://..., got {_safe(url)!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(
            f"only a scheme, user, password, host and port are understood, got {_safe(url)!r}"
        )
    if parts.password is not None and not parts.username:
        raise BrokerUrlError("a password needs a user name")
    return BrokerUrl(
        host=parts.hostname,
        port=port or MQTT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _safe(url: str) -> str:
    # An error message must not carry the password it complains about.
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}"


@dataclass(frozen=True, slots=True)
class ClientTls:
    """The TLS side of a broker connection.

    Attributes:
        ca_file: The CA certificates (PEM) the broker's certificate must chain to; the system's
            when None.
        cert_file: This client's certificate (PEM), for a broker that requires one.
        key_file: Its private key (PEM); with ``cert_file`` only.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")

    def context(self) -> ssl.SSLContext:
        """A client context: the broker's certificate is verified, host name included.

        Raises:
            OSError: a file cannot be read.
            ssl.SSLError: a file is not a PEM certificate or key, or the key does not match.
        """
        context = ssl.create_default_context(
            cafile=None if self.ca_file is None else str(self.ca_file)
        )
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context
