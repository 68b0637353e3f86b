"""The brute-force guard of a sign-in at the touchscreen, in the store: wrong tries and a lockout.

One mechanism for the two secrets a person types to sign in: the staff PIN
(`kiosk.store.staff_pin_guard`) and the courier code (`kiosk.flows.courier`). Each has its own
pair of tables, so a lockout of one never locks the other. As for the customers' keypad
(`kiosk.store.keypad`), kept in SQLite so that pulling the plug does not reset it. The rule (how
many, how long) is the sign-in flow's; this module only counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class Guard:
    """Where one sign-in's wrong tries (``failures``) and its lock (one row, id 1) are kept."""

    failures: str
    lock: str


STAFF_PIN = Guard("staff_pin_failures", "staff_pin_lock")
COURIER_CODE = Guard("courier_code_failures", "courier_code_lock")


def locked_until(db: Database, guard: Guard) -> datetime | None:
    """When the current lockout ends (it may lie in the past), or None if never locked."""
    row = next(db.query(f"SELECT locked_until FROM {guard.lock} WHERE id = 1"), None)
    return None if row is None else from_db_time(row["locked_until"])


def record_failure(db: Database, guard: Guard, now: datetime, window: timedelta) -> int:
    """Counts a wrong try and forgets those older than ``window``; returns those in it.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(f"DELETE FROM {guard.failures} WHERE at <= ?", [to_db_time(now - window)])
    db.execute(f"INSERT INTO {guard.failures} (at) VALUES (?)", [to_db_time(now)])
    return int(next(db.query(f"SELECT count(*) AS n FROM {guard.failures}"))["n"])


def lock(db: Database, guard: Guard, until: datetime) -> None:
    """Locks this sign-in until ``until`` and starts counting afresh.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(f"UPDATE {guard.lock} SET locked_until = ? WHERE id = 1", [to_db_time(until)])
    db.execute(f"DELETE FROM {guard.failures}")


def clear(db: Database, guard: Guard) -> None:
    """Forgets the wrong tries counted (after a right one).

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(f"DELETE FROM {guard.failures}")
