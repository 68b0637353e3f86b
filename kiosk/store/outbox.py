"""The transactional outbox: events for the cloud, written with the change they describe.

`append_event` only works inside `Store.transaction`, so an event is committed with its state
change or not at all (invariant 3). It takes an event model of `shared.events` and stores its
payload and payload version, so the kiosk never commits a payload the cloud would refuse.
Sequences come from an AUTOINCREMENT key: increasing, without gaps (a rolled-back insert also
rolls back the counter), and never reused after pruning. Sync reads `pending_events` in
sequence order, publishes them, and acknowledges with `ack_events` or `ack_through`;
`prune_acked` keeps the file small.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store.database import Store, require_transaction
from kiosk.store.records import (
    EventType,
    OutboxEvent,
    from_db_time,
    from_json,
    to_db_time,
    to_json,
)
from shared.events import KioskEvent


def append_event(db: Database, event: KioskEvent, now: datetime) -> OutboxEvent:
    """Adds an event to the outbox, in the caller's transaction.

    Args:
        db: The transaction's database.
        event: The event, built as its type's model (validated when it was built).
        now: When it happened.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    event_id = str(uuid.uuid4())
    payload = event.payload()
    cursor = db.execute(
        "INSERT INTO outbox (event_id, type, version, payload, created_at) VALUES (?, ?, ?, ?, ?)",
        [event_id, event.type.value, event.VERSION, to_json(payload), to_db_time(now)],
    )
    sequence = cursor.lastrowid
    assert sequence is not None
    return OutboxEvent(
        sequence, event_id, EventType(event.type), payload, now, acked=False, version=event.VERSION
    )


def pending_events(db: Database, limit: int = 100, after_sequence: int = 0) -> list[OutboxEvent]:
    """Unacknowledged events after ``after_sequence``, oldest first, at most ``limit``."""
    rows = db.query(
        "SELECT * FROM outbox WHERE acked = 0 AND sequence > ? ORDER BY sequence LIMIT ?",
        [after_sequence, limit],
    )
    return [_event(row) for row in rows]


def events(
    db: Database, *, limit: int | None = None, newest_first: bool = False
) -> list[OutboxEvent]:
    """Every event still stored, acknowledged or not (for tests and the field tech's CLI)."""
    order = "DESC" if newest_first else "ASC"
    rows = db.query(
        f"SELECT * FROM outbox ORDER BY sequence {order} LIMIT ?", [-1 if limit is None else limit]
    )
    return [_event(row) for row in rows]


def last_sequence(db: Database) -> int:
    """The highest sequence ever given out (0 before the first event), pruned or not."""
    row = next(db.query("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"), None)
    return 0 if row is None else int(row["seq"])


def ack_events(store: Store, event_ids: Iterable[str], now: datetime) -> int:
    """Marks the given events acknowledged. Unknown or already acknowledged ids are ignored.

    Returns:
        How many events were newly acknowledged.
    """
    ids = list(event_ids)
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    with store.transaction() as db:
        cursor = db.execute(
            f"UPDATE outbox SET acked = 1, acked_at = ? WHERE acked = 0 AND event_id IN ({marks})",
            [to_db_time(now), *ids],
        )
        return cursor.rowcount


def ack_through(store: Store, sequence: int, now: datetime) -> int:
    """Acknowledges every event up to and including ``sequence`` (the cloud's ack cursor).

    Returns:
        How many events were newly acknowledged.
    """
    with store.transaction() as db:
        cursor = db.execute(
            "UPDATE outbox SET acked = 1, acked_at = ? WHERE acked = 0 AND sequence <= ?",
            [to_db_time(now), sequence],
        )
        return cursor.rowcount


def prune_acked(store: Store, older_than: datetime) -> int:
    """Deletes acknowledged events created before ``older_than``. Unacknowledged ones stay.

    Returns:
        How many events were deleted.
    """
    with store.transaction() as db:
        cursor = db.execute(
            "DELETE FROM outbox WHERE acked = 1 AND created_at < ?", [to_db_time(older_than)]
        )
        return cursor.rowcount


def _event(row: Mapping[str, Any]) -> OutboxEvent:
    created = from_db_time(row["created_at"])
    assert created is not None
    return OutboxEvent(
        sequence=row["sequence"],
        event_id=row["event_id"],
        type=EventType(row["type"]),
        payload=from_json(row["payload"]),
        created_at=created,
        acked=bool(row["acked"]),
        version=row["version"],
    )
