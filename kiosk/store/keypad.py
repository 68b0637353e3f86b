"""The keypad's brute-force guard, in the store: recent wrong codes and the lockout.

Kept in SQLite rather than in memory so that pulling the plug does not reset the guard: a
guesser who could reboot the kiosk after every few tries would otherwise get unlimited tries.
The rule itself (how many, how long) is the pickup flow's; this module only counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import from_db_time, to_db_time


def locked_until(db: Database) -> datetime | None:
    """When the current lockout ends (it may lie in the past), or None if never locked."""
    row = next(db.query("SELECT locked_until FROM keypad_lock WHERE id = 1"), None)
    return None if row is None else from_db_time(row["locked_until"])


def record_failure(db: Database, now: datetime, window: timedelta) -> int:
    """Counts a wrong code and forgets those older than ``window``.

    Returns:
        The wrong codes within ``window`` up to ``now``, this one included.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute("DELETE FROM keypad_failures WHERE at <= ?", [to_db_time(now - window)])
    db.execute("INSERT INTO keypad_failures (at) VALUES (?)", [to_db_time(now)])
    row = next(db.query("SELECT count(*) AS n FROM keypad_failures"))
    return int(row["n"])


def lock(db: Database, until: datetime) -> None:
    """Locks the keypad until ``until`` and starts counting afresh after it.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute("UPDATE keypad_lock SET locked_until = ? WHERE id = 1", [to_db_time(until)])
    db.execute("DELETE FROM keypad_failures")


def failures(db: Database) -> int:
    """Wrong codes currently counted."""
    return int(next(db.query("SELECT count(*) AS n FROM keypad_failures"))["n"])
