"""The staff PIN's brute-force guard, in the store: recent wrong PINs and the lockout.

As for the customers' keypad (`kiosk.store.keypad`), kept in SQLite so that pulling the plug
does not reset it. The rule (how many, how long) is the sign-in flow's; this module only counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import from_db_time, to_db_time


def locked_until(db: Database) -> datetime | None:
    """When the current lockout ends (it may lie in the past), or None if never locked."""
    row = next(db.query("SELECT locked_until FROM staff_pin_lock WHERE id = 1"), None)
    return None if row is None else from_db_time(row["locked_until"])


def record_failure(db: Database, now: datetime, window: timedelta) -> int:
    """Counts a wrong PIN and forgets those older than ``window``; returns those in it.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute("DELETE FROM staff_pin_failures WHERE at <= ?", [to_db_time(now - window)])
    db.execute("INSERT INTO staff_pin_failures (at) VALUES (?)", [to_db_time(now)])
    return int(next(db.query("SELECT count(*) AS n FROM staff_pin_failures"))["n"])


def lock(db: Database, until: datetime) -> None:
    """Locks staff sign-in until ``until`` and starts counting afresh.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute("UPDATE staff_pin_lock SET locked_until = ? WHERE id = 1", [to_db_time(until)])
    db.execute("DELETE FROM staff_pin_failures")


def clear(db: Database) -> None:
    """Forgets the wrong PINs counted (after a right one).

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute("DELETE FROM staff_pin_failures")
