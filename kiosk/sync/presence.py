"""Presence: the kiosk's ``birth``, its ``death`` (the MQTT will) and its ``heartbeat``.

Each connection gets a new **epoch** (kept in ``kiosk_meta``, so it keeps growing across
restarts). The birth (retained) and the will carry it, so the cloud can tell a late will of an
older connection from the death of the current one (Sparkplug B's rule). Heartbeats carry what
an operator needs to see from afar: door faults, outbox depth, last revision, free disk, and the
door bank's error while it does not answer.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from sqlite_utils import Database

from kiosk.store import changes, doors
from shared.protocol import BirthBody, DeathBody, HeartbeatBody

PACKAGE = "locker-fleet"


def firmware_version() -> str:
    """The installed version of the kiosk's package ("unknown" when not installed)."""
    try:
        return metadata.version(PACKAGE)[:64]
    except metadata.PackageNotFoundError:
        return "unknown"


def birth_body(db: Database, kiosk_id: str, epoch: int) -> BirthBody:
    """The retained announcement of a new connection."""
    return BirthBody(
        kiosk_id=kiosk_id,
        epoch=epoch,
        firmware=firmware_version(),
        last_revision=changes.last_revision(db),
    )


def death_body(kiosk_id: str, epoch: int) -> DeathBody:
    """The will of the connection with ``epoch`` (also published on a clean stop)."""
    return DeathBody(kiosk_id=kiosk_id, epoch=epoch)


def heartbeat_body(
    db: Database, kiosk_id: str, epoch: int, *, outbox_depth: int, board_error: str | None
) -> HeartbeatBody:
    """The kiosk's health now."""
    return HeartbeatBody(
        kiosk_id=kiosk_id,
        epoch=epoch,
        door_faults={str(door.number): door.fault for door in doors.list_doors(db) if door.fault},
        outbox_depth=outbox_depth,
        last_revision=changes.last_revision(db),
        disk_free_bytes=disk_free_bytes(db),
        board_error=board_error,
    )


def disk_free_bytes(db: Database) -> int:
    """Free bytes on the file system of the database's folder (of the working folder for an
    in-memory database)."""
    row = next(db.query("SELECT file FROM pragma_database_list WHERE name = 'main'"), None)
    file = row["file"] if row is not None else ""
    folder = Path(file).parent if file else Path.cwd()
    return shutil.disk_usage(folder).free
