"""Provisioning a kiosk: its identity, its files, and its registration with the cloud.

`provision_kiosk` generates the kiosk's Ed25519 key pair and a code secret of its own (issue 9:
one per kiosk, a location's second kiosk too: the location's changes carry a code hash per
kiosk, `shared.protocol.AllocationState.code_hashes`), writes the kiosk's files into a folder:

- ``kiosk-key.pem``: the kiosk's private key (PKCS#8, mode 0600);
- ``code-secret``: the code secret (text, mode 0600);
- ``kiosk.toml``: a configuration skeleton: ``[kiosk]`` and ``[sync]`` filled in (the broker,
  the cloud's public key, the key file), ``[layout]`` from the cloud's doors, and a ``[doors]``
  table to complete for the location's hardware;

and registers the public key and the code secret with the cloud, all or nothing: files written
for a kiosk that could not be registered are removed.

Given the fleet CA (`cloud.fleet_ca`), it also issues the kiosk's broker certificate (CN = kiosk
id) and writes it beside the signing key: ``kiosk-cert.pem``, ``kiosk-cert-key.pem`` (mode
0600) and ``fleet-ca.pem`` (the CA the broker's certificate chains to), all three named in
``[sync]``. The broker URL written for the kiosk never carries a user or password (the cloud's
own, in ``LOCKER_MQTT_URL``, must not travel to a kiosk).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cloud import errors
from cloud.doors import announce_labels
from cloud.fleet_ca import FleetCa
from cloud.store import kiosks
from cloud.store.database import Conn
from cloud.sync.keys import register_kiosk, write_private
from shared.broker_list import (
    CLUSTER_CONNECT_TIMEOUT_S,
    CLUSTER_SUBSCRIPTION_QOS,
    parse_broker_urls,
)
from shared.signing import Signer, Verifier
from shared.topic_ids import TopicIdError, check_topic_id

KEY_FILE = "kiosk-key.pem"
SECRET_FILE = "code-secret"  # noqa: S105 (a file name)
CONFIG_FILE = "kiosk.toml"
CERT_FILE = "kiosk-cert.pem"
CERT_KEY_FILE = "kiosk-cert-key.pem"
CA_FILE = "fleet-ca.pem"


@dataclass(frozen=True, slots=True)
class ProvisionedKiosk:
    kiosk_id: str
    location_id: str
    folder: Path
    public_key: str
    cloud_public_key: str

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_FILE


async def provision_kiosk(
    conn: Conn,
    *,
    location_id: str,
    kiosk_id: str,
    folder: Path,
    broker_url: str,
    cloud_key: Verifier,
    now: datetime,
    ca: FleetCa | None = None,
) -> ProvisionedKiosk:
    """Creates a kiosk's identity and files in ``folder`` and registers it.

    Raises:
        LocationNotFound, AlreadyExists (the kiosk id is registered, or the folder already
        holds a kiosk's files), BadRequest (a broker URL that does not parse, or one without
        TLS while a certificate is to be issued), InvalidId (a location or kiosk id that no
        sync topic can carry, `shared.topic_ids`), before anything is written.
    """
    for what, value in (("location id", location_id), ("kiosk id", kiosk_id)):
        try:
            check_topic_id(what, value)
        except TopicIdError as error:
            field = what.replace(" ", "_")
            raise errors.InvalidId(str(error), details={"field": field}) from None
    files = [folder / KEY_FILE, folder / SECRET_FILE, folder / CONFIG_FILE]
    if ca is not None:
        files += [folder / CERT_FILE, folder / CERT_KEY_FILE, folder / CA_FILE]
    brokers = _kiosk_broker_urls(broker_url, tls_required=ca is not None)
    taken = [f.name for f in files if f.exists()]
    if taken:
        raise errors.AlreadyExists(f"{folder} already holds {', '.join(taken)}: use another folder")
    layout = await _layout(conn, location_id)
    # issue 9: a code secret of its own for every kiosk, a second one at a location too, so a
    # stolen kiosk's secret says nothing of the codes hashed for the others, nor (once it is
    # revoked) of any code issued afterwards. Text, as kiosk.code_secret_file reads it.
    secret = secrets.token_urlsafe(32).encode()
    signer = Signer.generate()
    config = _config(
        location_id, kiosk_id, brokers, cloud_key.public_base64(), layout, ca is not None
    )
    issued = None
    try:
        await asyncio.to_thread(_write_files, folder, signer, secret, config)
        if ca is not None:
            issued = await asyncio.to_thread(
                ca.issue_kiosk, kiosk_id=kiosk_id, location_id=location_id, out=folder, now=now
            )
            await asyncio.to_thread((folder / CA_FILE).write_bytes, ca.bundle_file.read_bytes())
        await register_kiosk(
            conn,
            kiosk_id=kiosk_id,
            location_id=location_id,
            public_key=signer.verifier.public_base64(),
            code_secret=secret,
            now=now,
        )
    except BaseException:
        for written in files:
            written.unlink(missing_ok=True)
        if ca is not None and issued is not None:
            # The certificate's files are gone, but it was signed: it must not stay valid.
            ca.revoke(now=now, serial=issued.certificate.serial)
        raise
    # issue 10: the doors' labels, for the kiosk's first catch-up (doors added from now on
    # log their own).
    await announce_labels(conn, location_id, now)
    return ProvisionedKiosk(
        kiosk_id=kiosk_id,
        location_id=location_id,
        folder=folder,
        public_key=signer.verifier.public_base64(),
        cloud_public_key=cloud_key.public_base64(),
    )


def _kiosk_broker_urls(urls: str, *, tls_required: bool) -> list[str]:
    """The kiosk's broker URLs: one, or a broker cluster's nodes (a comma-separated list, as
    ``LOCKER_MQTT_URL`` may be: issue 13), without user names or passwords."""
    try:
        parsed = parse_broker_urls(urls)
    except ValueError as error:
        raise errors.BadRequest(f"broker URL: {error}") from None
    if tls_required and not parsed[0].tls:
        raise errors.BadRequest("a kiosk with a broker certificate needs an mqtts:// broker URL")
    return [f"{'mqtts' if url.tls else 'mqtt'}://{url.host}:{url.port}" for url in parsed]


def _write_files(folder: Path, signer: Signer, secret: bytes, config: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / KEY_FILE, signer.private_pem())
    write_private(folder / SECRET_FILE, secret + b"\n")
    (folder / CONFIG_FILE).write_text(config, encoding="utf-8")


async def _layout(conn: Conn, location_id: str) -> list[tuple[str, str]]:
    """The location's doors as ``[layout]`` entries: runs of one size become ranges."""
    found = await kiosks.layout_doors(conn, location_id)
    if found is None:
        raise errors.LocationNotFound(f"no location {location_id!r}")
    doors = [(d.door_number, d.size) for d in found]
    entries = []
    runs = itertools.groupby(enumerate(doors), key=lambda item: (item[1][1], item[1][0] - item[0]))
    for (size, _), run in runs:
        numbers = [door for _, (door, _) in run]
        key = str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
        entries.append((key, size))
    return entries


def _config(
    location_id: str,
    kiosk_id: str,
    broker_urls: list[str],
    cloud_public_key: str,
    layout: list[tuple[str, str]],
    with_certificate: bool = False,
) -> str:
    q = json.dumps  # a TOML basic string is a JSON string for these values
    lines = [
        f"# Kiosk {kiosk_id} at {location_id}, written by locker-cloud provision-kiosk.",
        "# Every key is in docs/kiosk.md; check with `locker-kiosk check-config --config FILE`.",
        "# Paths are relative to this file's folder. Complete [doors] for the hardware.",
        "[kiosk]",
        f"location_id = {q(location_id)}",
        f"kiosk_id = {q(kiosk_id)}",
        'database = "kiosk.db"',
        f"code_secret_file = {q(SECRET_FILE)}",
        "",
        "# The cloud's doors at this location.",
        "[layout]",
        *(f"{q(key)} = {q(size)}" for key, size in layout),
        "",
        "# The door bank: serial (doors.serial.*) or gpio (doors.gpio.*), see docs/hardware.md.",
        "[doors]",
        'backend = "serial"',
        "",
        "[sync]",
        f"broker_url = {q(broker_urls[0])}",
        *(
            [
                "# A broker cluster (NATS): the other nodes, and the settings that let a kiosk",
                "# move to another node quickly when one dies (docs/protocol.md, Broker cluster).",
                f"broker_urls = [{', '.join(q(url) for url in broker_urls[1:])}]",
                f"subscription_qos = {CLUSTER_SUBSCRIPTION_QOS}",
                f"connect_timeout_s = {CLUSTER_CONNECT_TIMEOUT_S}",
            ]
            if len(broker_urls) > 1
            else []
        ),
        f"cloud_public_key = {q(cloud_public_key)}",
        f"private_key_file = {q(KEY_FILE)}",
        *(
            [
                f"ca_file = {q(CA_FILE)}",
                f"client_cert_file = {q(CERT_FILE)}",
                f"client_key_file = {q(CERT_KEY_FILE)}",
            ]
            if with_certificate
            else []
        ),
        "",
    ]
    return "\n".join(lines)
