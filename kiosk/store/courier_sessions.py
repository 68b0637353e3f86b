"""Courier sessions: a courier's visit, from sign-in to sign-out, and the parcels it handled.

A row per session (kiosk migration ``0014_courier_sessions``) and one per parcel put in or
taken out in it, so support can answer "what did this driver do here on Tuesday".
"""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import to_db_time


def start(db: Database, courier_id: str, now: datetime) -> int:
    """Opens a session for ``courier_id``; returns its id."""
    require_transaction(db)
    cur = db.execute(
        "INSERT INTO courier_sessions (courier_id, started_at) VALUES (?, ?)",
        [courier_id, to_db_time(now)],
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


def end(db: Database, session_id: int, now: datetime) -> None:
    require_transaction(db)
    db.execute(
        "UPDATE courier_sessions SET ended_at = ? WHERE session_id = ? AND ended_at IS NULL",
        [to_db_time(now), session_id],
    )


def is_open(db: Database, session_id: int) -> bool:
    row = next(
        db.query("SELECT ended_at FROM courier_sessions WHERE session_id = ?", [session_id]), None
    )
    return row is not None and row["ended_at"] is None


def record_parcel(
    db: Database, session_id: int, allocation_id: str, action: str, now: datetime
) -> None:
    """Notes a parcel handled in the session (``drop_off``, ``collect_opened``, ``collected``)."""
    require_transaction(db)
    db.execute(
        "INSERT OR IGNORE INTO courier_session_parcels (session_id, allocation_id, action, at)"
        " VALUES (?, ?, ?, ?)",
        [session_id, allocation_id, action, to_db_time(now)],
    )


def parcels(db: Database, session_id: int) -> list[tuple[str, str]]:
    """(allocation id, action) of the session, in the order handled."""
    rows = db.query(
        "SELECT allocation_id, action FROM courier_session_parcels WHERE session_id = ?"
        " ORDER BY at, rowid",
        [session_id],
    )
    return [(str(r["allocation_id"]), str(r["action"])) for r in rows]
