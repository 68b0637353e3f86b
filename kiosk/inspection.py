"""Read-only views of a kiosk's SQLite file, for the field tech's ``locker-kiosk`` commands.

The file is opened read-only (``mode=ro``, ``query_only``) while the daemon may be running: WAL
lets a reader see the last committed state without blocking the daemon's writes, and nothing here
takes a write lock, runs a migration or needs the code secret. The views are plain dictionaries
(JSON-ready); `kiosk.cli` prints them as text or JSON.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kiosk.store import allocations, audit, changes, doors, keypad, operations, outbox
from kiosk.store.database import BUSY_TIMEOUT_MS
from shared.states import AllocationStatus


class InspectionError(RuntimeError):
    """The file is missing, unreadable, or not a kiosk database."""


_REQUIRED_TABLES = ("doors", "allocations", "door_operations", "outbox", "audit_log", "kiosk_meta")


@contextmanager
def open_read_only(path: str | Path) -> Iterator[Database]:
    """Opens the kiosk database at ``path`` for reading only.

    Raises:
        InspectionError: no such file, it cannot be opened, or it is not a kiosk database.
    """
    file = Path(path)
    if not file.is_file():
        raise InspectionError(f"no kiosk database at {file}")
    try:
        conn = sqlite3.connect(
            f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as error:
        raise InspectionError(f"cannot open {file}: {error}") from None
    try:
        conn.execute("PRAGMA query_only=ON")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        missing = [t for t in _REQUIRED_TABLES if t not in tables]
        if missing:
            raise InspectionError(f"{file} is not a kiosk database (no {missing[0]} table)")
        yield Database(conn, execute_plugins=False)
    except sqlite3.DatabaseError as error:
        raise InspectionError(f"cannot read {file}: {error}") from None
    finally:
        conn.close()


def status(db: Database, now: datetime) -> dict[str, Any]:
    """The kiosk at a glance: identity, doors, parcel counts, outbox, sync, keypad."""
    meta = {row["key"]: row["value"] for row in db.query("SELECT key, value FROM kiosk_meta")}
    counts = {
        row["status"]: row["n"]
        for row in db.query(
            "SELECT status, count(*) AS n FROM allocations GROUP BY status ORDER BY status"
        )
    }
    pending = next(db.query("SELECT count(*) AS n FROM outbox WHERE acked = 0"))["n"]
    stored = next(db.query("SELECT count(*) AS n FROM outbox"))["n"]
    locked = keypad.locked_until(db)
    return {
        "location_id": meta.get("location_id"),
        "kiosk_id": meta.get("kiosk_id"),
        "last_revision": changes.last_revision(db),
        "outbox": {
            "pending": pending,
            "stored": stored,
            "last_sequence": outbox.last_sequence(db),
        },
        "keypad": {
            "locked": locked is not None and locked > now,
            "locked_until": None if locked is None else locked.isoformat(),
            "recent_failures": keypad.failures(db),
        },
        "parcels": counts,
        "active_operations": [
            {
                "operation_id": op.operation_id,
                "door": op.door,
                "purpose": op.purpose.value,
                "state": op.state.value,
                "since": op.created_at.isoformat(),
            }
            for op in operations.active_operations(db)
        ],
        "doors": [
            {
                "door": door.number,
                "size": door.size.value,
                "status": door.status.value,
                "sensor": _sensor(door.sensor_open, door.sensor_occupied),
                "sensor_changed_at": _iso(door.sensor_changed_at),
                "fault": door.fault,
                "maintenance_reason": door.maintenance_reason,
            }
            for door in doors.list_doors(db)
        ],
    }


def parcels(db: Database, statuses: list[AllocationStatus] | None = None) -> list[dict[str, Any]]:
    """Every parcel and return (of ``statuses``, if given), by door."""
    return [
        {
            "allocation_id": a.allocation_id,
            "kind": a.kind.value,
            "barcode": a.barcode,
            "size": a.size.value,
            "door": a.door,
            "status": a.status.value,
            "has_code": a.code_id is not None,
            "reservation_expires_at": _iso(a.reservation_expires_at),
            "pickup_expires_at": _iso(a.pickup_expires_at),
            "deposited_at": _iso(a.deposited_at),
            "finished_at": _iso(a.finished_at),
        }
        for a in allocations.list_allocations(db, statuses)
    ]


def audit_entries(db: Database, limit: int, door: int | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` audit entries (of one door, if given), oldest first."""
    entries = audit.entries(db, limit=None if door is not None else limit)
    if door is not None:
        entries = [e for e in entries if e.door == door][-limit:]
    return [
        {
            "audit_id": e.audit_id,
            "at": e.at.isoformat(),
            "actor": e.actor.value,
            "door": e.door,
            "command": e.command,
            "result": e.result,
            "operation_id": e.operation_id,
            "detail": dict(e.detail),
        }
        for e in entries
    ]


def outbox_events(db: Database, *, pending_only: bool, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` outbox events (only unacknowledged ones if asked), oldest first."""
    if pending_only:
        rows = list(
            db.query(
                "SELECT sequence FROM outbox WHERE acked = 0 ORDER BY sequence DESC LIMIT ?",
                [limit],
            )
        )
        first = rows[-1]["sequence"] - 1 if rows else 0
        found = outbox.pending_events(db, limit=limit, after_sequence=first)
    else:
        found = list(reversed(outbox.events(db, limit=limit, newest_first=True)))
    return [
        {
            "sequence": e.sequence,
            "event_id": e.event_id,
            "type": e.type.value,
            "created_at": e.created_at.isoformat(),
            "acked": e.acked,
            "payload": dict(e.payload),
        }
        for e in found
    ]


def _sensor(is_open: bool | None, occupied: bool | None) -> str:
    if is_open is None:
        return "unknown"
    text = "open" if is_open else "shut"
    if occupied is not None:
        text += ", full" if occupied else ", empty"
    return text


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
