"""The audit log: every door command with its actor and result, and every code attempt.

A door command gets its entry in the transaction that commits the command, before the pulse,
with result ``pending``; `finish_entry` fills in the result afterwards. So a pulse never happens
without an entry, and an entry still ``pending`` after a crash tells boot reconciliation which
commands were interrupted. Codes appear only as a short reference to their keyed hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import Actor, AuditEntry, from_db_time, from_json, to_db_time, to_json

PENDING = "pending"


def record_entry(
    db: Database,
    now: datetime,
    actor: Actor,
    command: str,
    result: str,
    *,
    door: int | None = None,
    operation_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Appends an entry in the caller's transaction and returns its id.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    finished = None if result == PENDING else to_db_time(now)
    cursor = db.execute(
        "INSERT INTO audit_log (at, actor, door, command, result, operation_id, detail,"
        " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            to_db_time(now),
            actor.value,
            door,
            command,
            result,
            operation_id,
            to_json(detail or {}),
            finished,
        ],
    )
    audit_id = cursor.lastrowid
    assert audit_id is not None
    return audit_id


def finish_entry(
    db: Database,
    audit_id: int,
    result: str,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Records the result of a pending entry (merging ``detail`` into its detail).

    Entries that already have a result are left alone, so a late result cannot overwrite the
    one boot reconciliation wrote.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    row = next(db.query("SELECT detail FROM audit_log WHERE audit_id = ?", [audit_id]), None)
    if row is None:
        return
    merged = {**from_json(row["detail"]), **(detail or {})}
    db.execute(
        "UPDATE audit_log SET result = ?, finished_at = ?, detail = ?"
        " WHERE audit_id = ? AND result = ?",
        [result, to_db_time(now), to_json(merged), audit_id, PENDING],
    )


def pending_entries(db: Database, operation_id: str | None = None) -> list[AuditEntry]:
    """Entries still awaiting their result, oldest first (of one operation, if given)."""
    if operation_id is None:
        rows = db.query("SELECT * FROM audit_log WHERE result = ? ORDER BY audit_id", [PENDING])
    else:
        rows = db.query(
            "SELECT * FROM audit_log WHERE result = ? AND operation_id = ? ORDER BY audit_id",
            [PENDING, operation_id],
        )
    return [_entry(row) for row in rows]


def entries(
    db: Database, *, limit: int | None = None, command: str | None = None
) -> list[AuditEntry]:
    """Entries oldest first (``limit``: the newest ``limit`` of them), optionally of one command."""
    where, params = ("WHERE command = ?", [command]) if command else ("", [])
    rows = list(
        db.query(
            f"SELECT * FROM audit_log {where} ORDER BY audit_id DESC LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
    )
    return [_entry(row) for row in reversed(rows)]


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    at = from_db_time(row["at"])
    assert at is not None
    return AuditEntry(
        audit_id=row["audit_id"],
        at=at,
        actor=Actor(row["actor"]),
        door=row["door"],
        command=row["command"],
        result=row["result"],
        operation_id=row["operation_id"],
        detail=from_json(row["detail"]),
        finished_at=from_db_time(row["finished_at"]),
    )
