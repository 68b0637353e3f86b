"""Pickup and return codes in the store, as keyed hashes only.

Several parcels of one customer share a code: allocations point at one code row, which is found
by its hash. A code works once: `mark_used` stamps the row when the code's doors are committed to
open. A row that is used stays, so the same code typed again is told apart from an unknown one
("already used"). If the cloud later issues the same six characters again (a new customer, long
after), a new row is created: the live row is always found first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import CodeKind, CodeRecord, from_db_time, to_db_time


def find_code(db: Database, code_hash: str) -> CodeRecord | None:
    """The code with this hash: the live (unused) row if there is one, else the latest used one."""
    row = next(
        db.query(
            "SELECT * FROM codes WHERE code_hash = ?"
            " ORDER BY (used_at IS NULL) DESC, created_at DESC, code_id DESC LIMIT 1",
            [code_hash],
        ),
        None,
    )
    return None if row is None else _code(row)


def find_code_of(db: Database, code_hashes: Sequence[str]) -> CodeRecord | None:
    """`find_code` over the code's hashes under each generation of the secret (issue 9): a live
    row under any of them first, then the latest used one."""
    if not code_hashes:
        return None
    marks = ", ".join("?" for _ in code_hashes)
    row = next(
        db.query(
            f"SELECT * FROM codes WHERE code_hash IN ({marks})"
            " ORDER BY (used_at IS NULL) DESC, created_at DESC, code_id DESC LIMIT 1",
            list(code_hashes),
        ),
        None,
    )
    return None if row is None else _code(row)


def get_code(db: Database, code_id: int) -> CodeRecord:
    """The code row ``code_id``.

    Raises:
        LookupError: no such row.
    """
    row = next(db.query("SELECT * FROM codes WHERE code_id = ?", [code_id]), None)
    if row is None:
        raise LookupError(f"no code row {code_id}")
    return _code(row)


def attach_code(
    db: Database, code_hash: str, kind: CodeKind, now: datetime, generation: int = 1
) -> int:
    """The live code row with this hash, created if there is none; returns its id.

    A live row of the other kind cannot be shared (the cloud never has one code for a pickup and
    a return at once): it is retired and a new row takes the hash. ``generation`` is the
    generation of the code secret the hash is under (`kiosk.store.code_secrets`).

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    live = next(
        db.query("SELECT * FROM codes WHERE code_hash = ? AND used_at IS NULL", [code_hash]), None
    )
    if live is not None:
        if live["kind"] == kind.value:
            return int(live["code_id"])
        db.execute(
            "UPDATE codes SET used_at = ? WHERE code_id = ?", [to_db_time(now), live["code_id"]]
        )
    cursor = db.execute(
        "INSERT INTO codes (kind, code_hash, created_at, generation) VALUES (?, ?, ?, ?)",
        [kind.value, code_hash, to_db_time(now), generation],
    )
    code_id = cursor.lastrowid
    assert code_id is not None
    return code_id


def mark_used(db: Database, code_id: int, now: datetime) -> None:
    """Stamps the code as used: it will not open anything again.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(
        "UPDATE codes SET used_at = ? WHERE code_id = ? AND used_at IS NULL",
        [to_db_time(now), code_id],
    )


def release(db: Database, code_id: int) -> bool:
    """Makes a used code live again, when the doors it was to open never opened.

    Refused (returns False) when another live row now has the same hash.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    code = get_code(db, code_id)
    if code.used_at is None:
        return True
    live = db.execute(
        "SELECT 1 FROM codes WHERE code_hash = ? AND used_at IS NULL", [code.code_hash]
    ).fetchone()
    if live is not None:
        return False
    db.execute("UPDATE codes SET used_at = NULL WHERE code_id = ?", [code_id])
    return True


def _code(row: Mapping[str, Any]) -> CodeRecord:
    return CodeRecord(
        code_id=row["code_id"],
        kind=CodeKind(row["kind"]),
        code_hash=row["code_hash"],
        used_at=from_db_time(row["used_at"]),
    )
