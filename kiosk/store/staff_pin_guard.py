"""The staff PIN's brute-force guard, in the store: recent wrong PINs and the lockout.

The staff PIN's tables in the sign-in guard (`kiosk.store.sign_in_guard`), which the courier
code's shares its mechanism with. The rule (how many, how long) is the sign-in flow's; this
module only counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk.store import sign_in_guard
from kiosk.store.sign_in_guard import STAFF_PIN


def locked_until(db: Database) -> datetime | None:
    """When the current lockout ends (it may lie in the past), or None if never locked."""
    return sign_in_guard.locked_until(db, STAFF_PIN)


def record_failure(db: Database, now: datetime, window: timedelta) -> int:
    """Counts a wrong PIN and forgets those older than ``window``; returns those in it.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    return sign_in_guard.record_failure(db, STAFF_PIN, now, window)


def lock(db: Database, until: datetime) -> None:
    """Locks staff sign-in until ``until`` and starts counting afresh.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    sign_in_guard.lock(db, STAFF_PIN, until)


def clear(db: Database) -> None:
    """Forgets the wrong PINs counted (after a right one).

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    sign_in_guard.clear(db, STAFF_PIN)
