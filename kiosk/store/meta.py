"""Small values the kiosk keeps in ``kiosk_meta``: its identity binding, and sync's session epoch.

The identity keys (location, kiosk, code-secret fingerprint) are written and checked by
`kiosk.store.database`; this module holds the others.
"""

from __future__ import annotations

import uuid

from sqlite_utils import Database

from kiosk.store.database import Store, require_transaction

SYNC_EPOCH = "sync_epoch"
"""The number of the kiosk's latest broker connection (see ``docs/protocol.md``, presence)."""


def get_value(db: Database, key: str) -> str | None:
    """The value stored under ``key``, or None."""
    row = next(db.query("SELECT value FROM kiosk_meta WHERE key = ?", [key]), None)
    return None if row is None else str(row["value"])


def set_value(db: Database, key: str, value: str) -> None:
    """Stores ``value`` under ``key``, in the caller's transaction.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(
        "INSERT INTO kiosk_meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def next_epoch(store: Store) -> int:
    """Increments and returns the sync epoch (1 for the first connection), durably."""
    with store.transaction() as db:
        epoch = int(get_value(db, SYNC_EPOCH) or 0) + 1
        set_value(db, SYNC_EPOCH, str(epoch))
        return epoch


def current_epoch(db: Database) -> int:
    """The epoch of the latest connection (0 before the first)."""
    return int(get_value(db, SYNC_EPOCH) or 0)


STORE_INCARNATION = "store_incarnation"
"""The store's incarnation id, made by migration ``0006_store_incarnation``."""


def store_incarnation(db: Database) -> uuid.UUID:
    """This store's incarnation: the events it sends are numbered under it.

    Raises:
        LookupError: the store was not migrated (no incarnation).
    """
    value = get_value(db, STORE_INCARNATION)
    if value is None:
        raise LookupError("the store has no incarnation (not migrated?)")
    return uuid.UUID(value)
