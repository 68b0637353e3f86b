"""The fleet broker's Mosquitto configuration and ACL, generated from the fleet CA's record.

What the generated configuration enforces, and how (Mosquitto 2.0):

- TLS only, client certificates of the fleet CA required (``require_certificate``), revoked ones
  refused (``crlfile``); no anonymous access and no passwords.
- Identity: ``use_identity_as_username`` makes the certificate's CN the user name, and
  ``use_username_as_clientid`` makes it the client id too. A client cannot pick another's id,
  so a kiosk cannot take over (and knock off) another kiosk's session: the id it sends is
  replaced by the CN of the certificate it holds.
- ACL (the dynamic-security plugin's ``dynamic-security.json``; Mosquitto's own ``acl_file``
  never checks subscriptions): a kiosk may publish only on its own location's ``kiosk/...``
  topics and subscribe to and read only its own location's ``cloud/...`` topics; so ``#``,
  another location and the cloud workers' shared group are all refused. The cloud workers read
  every kiosk topic (through their shared group) and publish on every cloud topic. Anyone
  else (an identity the CA signed but the file does not name) has no rights at all.
- Limits: ``max_packet_size`` just above the protocol's largest payload, so a huge message is
  dropped by the broker (and its sender disconnected) before any kiosk sees it; bounded queues
  and in-flight windows per client.

Mosquitto re-reads the CRL on SIGHUP, so a revocation takes effect with ``kill -HUP``; the
plugin reads its file at start only, but takes changes live over ``$CONTROL/dynamic-security/v1``
from the CA's ``admin`` identity: `cloud.broker_acl` (``locker-cloud broker-apply-acl``) brings a
running broker's clients and roles level with the CA, so a new kiosk needs no restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cloud.fleet_ca import FleetCa, IssuedCertificate, Role
from shared.protocol import MAX_PAYLOAD_BYTES, SHARED_GROUP, TOPIC_ROOT

# The largest protocol payload plus its topic and MQTT headers.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4096
CONFIG_FILE = "mosquitto.conf"
SECURITY_FILE = "dynamic-security.json"
DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Where the broker's TLS files are (absolute paths in the generated configuration)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    crl_file: Path


@dataclass(frozen=True, slots=True)
class GeneratedConfig:
    config_file: Path
    security_file: Path
    kiosks: int
    workers: int


def _allow(acltype: str, topic_filter: str) -> dict[str, object]:
    return {"acltype": acltype, "topic": topic_filter, "allow": True}


def kiosk_role(location_id: str) -> dict[str, object]:
    """What every kiosk of a location may do: send on its location's kiosk channels, subscribe
    to and receive its location's cloud channels. Nothing else."""
    where = f"{TOPIC_ROOT}/{location_id}"
    return {
        "rolename": f"kiosk@{location_id}",
        "acls": [
            _allow("publishClientSend", f"{where}/kiosk/#"),
            _allow("subscribePattern", f"{where}/cloud/#"),
            _allow("publishClientReceive", f"{where}/cloud/#"),
            _allow("unsubscribePattern", f"{where}/cloud/#"),
        ],
    }


WORKER_ROLE: dict[str, object] = {
    "rolename": "cloud-worker",
    "acls": [
        _allow("subscribePattern", f"$share/{SHARED_GROUP}/{TOPIC_ROOT}/+/kiosk/#"),
        # One worker on a broker without shared subscriptions (LOCKER_MQTT_SHARED_SUBSCRIPTION).
        _allow("subscribePattern", f"{TOPIC_ROOT}/+/kiosk/#"),
        _allow("publishClientReceive", f"{TOPIC_ROOT}/+/kiosk/#"),
        _allow("unsubscribePattern", "#"),
        _allow("publishClientSend", f"{TOPIC_ROOT}/+/cloud/#"),
    ],
}


CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
ADMIN_ROLE: dict[str, object] = {
    "rolename": "broker-admin",
    "acls": [
        # The plugin's control topic and its answers, nothing of the fleet's traffic.
        _allow("publishClientSend", f"{CONTROL_TOPIC}"),
        _allow("subscribePattern", f"{CONTROL_TOPIC}/response"),
        _allow("publishClientReceive", f"{CONTROL_TOPIC}/response"),
        _allow("unsubscribePattern", f"{CONTROL_TOPIC}/response"),
    ],
}


def role_of(certificate: IssuedCertificate) -> str:
    """The dynamic-security role of a live identity of the CA."""
    if certificate.role is Role.KIOSK:
        return f"kiosk@{certificate.location_id}"
    if certificate.role is Role.ADMIN:
        return str(ADMIN_ROLE["rolename"])
    return str(WORKER_ROLE["rolename"])


def dynamic_security(ca: FleetCa, now: datetime) -> dict[str, object]:
    """The dynamic-security plugin's state: a client per live identity of the CA, a role per
    location, and no rights by default (an identity the CA signed but the file does not know
    connects and can do nothing)."""
    clients: dict[str, dict[str, object]] = {}
    locations: set[str] = set()
    for certificate in ca.identities(now):
        if certificate.role is Role.KIOSK:
            assert certificate.location_id is not None
            locations.add(certificate.location_id)
        role = role_of(certificate)
        # No password: the broker authenticates by certificate (use_identity_as_username) and
        # never asks the plugin; a password would only open a second way in.
        clients[certificate.identity] = {
            "username": certificate.identity,
            "textName": f"{certificate.role} {certificate.identity}",
            "roles": [{"rolename": role}],
        }
    return {
        "clients": list(clients.values()),
        "groups": [],
        "roles": [
            WORKER_ROLE,
            ADMIN_ROLE,
            *(kiosk_role(location) for location in sorted(locations)),
        ],
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": False,
        },
    }


def config_text(
    files: BrokerFiles,
    security_file: Path,
    *,
    plugin: Path = DYNSEC_PLUGIN,
    port: int,
    bind_address: str | None = None,
    user: str | None = None,
) -> str:
    """The ``mosquitto.conf`` of the fleet broker.

    ``user`` is who Mosquitto runs as once started as root (its default: ``mosquitto``, which
    must then be able to read the key, CRL and ACL files).
    """
    listener = f"listener {port}" + (f" {bind_address}" if bind_address else "")
    return "\n".join(
        [
            "# Generated by `locker-cloud mosquitto-config`; see deploy/mosquitto/README.md.",
            *([f"user {user}"] if user else []),
            "per_listener_settings false",
            "allow_anonymous false",
            "# The ACL: Mosquitto's acl_file never checks subscriptions (so anyone could join the",
            "# cloud's shared group and swallow its share of the kiosks' events); the dynamic",
            "# security plugin does.",
            f"plugin {plugin}",
            f"plugin_opt_config_file {security_file}",
            "",
            "# Limits: nothing larger than the protocol's largest message gets through.",
            f"max_packet_size {MAX_PACKET_BYTES}",
            "max_inflight_messages 20",
            "max_queued_messages 1000",
            f"max_queued_bytes {16 * MAX_PAYLOAD_BYTES}",
            "max_keepalive 3600",
            "",
            "# Mutual TLS; the certificate's CN is the user name and the client id.",
            listener,
            "protocol mqtt",
            f"cafile {files.ca_file}",
            f"certfile {files.cert_file}",
            f"keyfile {files.key_file}",
            f"crlfile {files.crl_file}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            "use_username_as_clientid true",
            "",
        ]
    )


def generate(
    ca: FleetCa,
    out: Path,
    *,
    broker_cert_file: Path,
    broker_key_file: Path,
    port: int,
    now: datetime,
    bind_address: str | None = None,
    user: str | None = None,
    plugin: Path = DYNSEC_PLUGIN,
) -> GeneratedConfig:
    """Writes ``mosquitto.conf`` and ``dynamic-security.json`` into ``out`` (paths in them are
    absolute)."""
    out.mkdir(parents=True, exist_ok=True)
    security_file = (out / SECURITY_FILE).resolve()
    live = ca.identities(now)
    security_file.write_text(
        json.dumps(dynamic_security(ca, now), indent=2) + "\n", encoding="utf-8"
    )
    files = BrokerFiles(
        ca_file=ca.bundle_file.resolve(),  # both CAs during a CA rotation
        cert_file=broker_cert_file.resolve(),
        key_file=broker_key_file.resolve(),
        crl_file=ca.crl_file.resolve(),
    )
    config_file = out / CONFIG_FILE
    config_file.write_text(
        config_text(
            files,
            security_file,
            plugin=plugin,
            port=port,
            bind_address=bind_address,
            user=user,
        ),
        encoding="utf-8",
    )
    return GeneratedConfig(
        config_file=config_file,
        security_file=security_file,
        kiosks=len({c.identity for c in live if c.role is Role.KIOSK}),
        workers=len({c.identity for c in live if c.role is Role.WORKER}),
    )
