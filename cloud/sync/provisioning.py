"""Provisioning a kiosk: its identity, its files, and its registration with the cloud.

`provision_kiosk` generates the kiosk's Ed25519 key pair and takes the location's code secret
(a new one for the location's first kiosk; the same one for a second kiosk there, since the
location's changes carry one code hash), writes the kiosk's files into a folder:

- ``kiosk-key.pem``: the kiosk's private key (PKCS#8, mode 0600);
- ``code-secret``: the code secret (text, mode 0600);
- ``kiosk.toml``: a configuration skeleton: ``[kiosk]`` and ``[sync]`` filled in (the broker,
  the cloud's public key, the key file), ``[layout]`` from the cloud's doors, and a ``[doors]``
  table to complete for the location's hardware;

and registers the public key and the code secret with the cloud, all or nothing: files written
for a kiosk that could not be registered are removed.
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
from cloud.store import kiosks
from cloud.store.database import Conn
from cloud.sync.keys import location_code_secret, register_kiosk, write_private
from shared.signing import Signer, Verifier

KEY_FILE = "kiosk-key.pem"
SECRET_FILE = "code-secret"  # noqa: S105 (a file name)
CONFIG_FILE = "kiosk.toml"


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
) -> ProvisionedKiosk:
    """Creates a kiosk's identity and files in ``folder`` and registers it.

    Raises:
        LocationNotFound, AlreadyExists (the kiosk id is registered, or the folder already
        holds a kiosk's files), BadRequest.
    """
    files = [folder / KEY_FILE, folder / SECRET_FILE, folder / CONFIG_FILE]
    taken = [f.name for f in files if f.exists()]
    if taken:
        raise errors.AlreadyExists(f"{folder} already holds {', '.join(taken)}: use another folder")
    layout = await _layout(conn, location_id)
    secret = await location_code_secret(conn, location_id)
    if secret is None:
        secret = secrets.token_urlsafe(32).encode()  # text, as kiosk.code_secret_file reads it
    signer = Signer.generate()
    config = _config(location_id, kiosk_id, broker_url, cloud_key.public_base64(), layout)
    try:
        await asyncio.to_thread(_write_files, folder, signer, secret, config)
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
    broker_url: str,
    cloud_public_key: str,
    layout: list[tuple[str, str]],
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
        f"broker_url = {q(broker_url)}",
        f"cloud_public_key = {q(cloud_public_key)}",
        f"private_key_file = {q(KEY_FILE)}",
        "",
    ]
    return "\n".join(lines)
