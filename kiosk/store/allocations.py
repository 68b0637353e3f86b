"""Allocations (parcels and returns) in the store, and the door each one holds.

Every status change goes through the allocation state machine of ``shared/states.py``, and the
door follows: a reserved allocation's door is reserved, a deposited one's occupied, an expired
one's awaiting collection, and a finished one's door is free again. The database enforces that a
door holds at most one live allocation (invariant 1), whatever the code above does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store import doors
from kiosk.store.database import require_transaction
from kiosk.store.records import Allocation, AllocationKind, from_db_time, to_db_time
from shared.sizes import Size
from shared.states import (
    DOOR_STATUS_FOR_ALLOCATION,
    LIVE_ALLOCATION_STATUSES,
    AllocationStatus,
    DoorStatus,
    allocation_transition,
)


class UnknownAllocation(LookupError):
    """An allocation id the store does not have."""

    def __init__(self, allocation_id: str) -> None:
        super().__init__(f"allocation {allocation_id} is not known at this kiosk")
        self.allocation_id = allocation_id


def get_allocation(db: Database, allocation_id: str) -> Allocation:
    """The allocation ``allocation_id``.

    Raises:
        UnknownAllocation: no such allocation.
    """
    row = next(db.query("SELECT * FROM allocations WHERE allocation_id = ?", [allocation_id]), None)
    if row is None:
        raise UnknownAllocation(allocation_id)
    return _allocation(row)


def find_allocation(db: Database, allocation_id: str) -> Allocation | None:
    """The allocation ``allocation_id``, or None."""
    try:
        return get_allocation(db, allocation_id)
    except UnknownAllocation:
        return None


def list_allocations(
    db: Database, statuses: Iterable[AllocationStatus] | None = None
) -> list[Allocation]:
    """Allocations (with one of ``statuses``, if given), by door then id."""
    if statuses is None:
        rows = db.query("SELECT * FROM allocations ORDER BY door, allocation_id")
    else:
        wanted = [s.value for s in statuses]
        marks = ", ".join("?" for _ in wanted)
        rows = db.query(
            f"SELECT * FROM allocations WHERE status IN ({marks}) ORDER BY door, allocation_id",
            wanted,
        )
    return [_allocation(row) for row in rows]


def allocations_with_code(db: Database, code_id: int) -> list[Allocation]:
    """The allocations a code opens (or opened), by door."""
    rows = db.query(
        "SELECT * FROM allocations WHERE code_id = ? ORDER BY door, allocation_id", [code_id]
    )
    return [_allocation(row) for row in rows]


def find_by_barcode(db: Database, barcode: str, kind: AllocationKind) -> Allocation | None:
    """The allocation of a scanned package: a live one first, else the most recent."""
    live = ", ".join(f"'{s.value}'" for s in LIVE_ALLOCATION_STATUSES)
    row = next(
        db.query(
            "SELECT * FROM allocations WHERE barcode = ? AND kind = ?"
            f" ORDER BY (status IN ({live})) DESC, created_at DESC LIMIT 1",
            [barcode, kind.value],
        ),
        None,
    )
    return None if row is None else _allocation(row)


def collectable(db: Database, now: datetime) -> list[Allocation]:
    """What staff should take out: expired parcels, parcels past their pickup window, returns."""
    rows = db.query(
        "SELECT * FROM allocations WHERE door IS NOT NULL AND ("
        " status = 'expired'"
        " OR (status = 'deposited' AND kind = 'return')"
        " OR (status = 'deposited' AND kind = 'delivery' AND pickup_expires_at <= ?)"
        ") ORDER BY door",
        [to_db_time(now)],
    )
    return [_allocation(row) for row in rows]


def insert_allocation(
    db: Database,
    *,
    allocation_id: str,
    kind: AllocationKind,
    barcode: str,
    size: Size,
    status: AllocationStatus,
    code_id: int | None,
    proposed_door: int | None,
    reservation_expires_at: datetime | None,
    pickup_expires_at: datetime | None,
    revision: int,
    now: datetime,
) -> Allocation:
    """Adds an allocation without a door (give it one with `assign_door`).

    Raises:
        sqlite3.IntegrityError: the id exists already.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    stamp = to_db_time(now)
    final = stamp if status.is_final else None
    db.execute(
        "INSERT INTO allocations (allocation_id, kind, barcode, size, door, proposed_door,"
        " status, code_id, reservation_expires_at, pickup_expires_at, finished_at, revision,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            allocation_id,
            kind.value,
            barcode,
            size.value,
            proposed_door,
            status.value,
            code_id,
            _time(reservation_expires_at),
            _time(pickup_expires_at),
            final,
            revision,
            stamp,
            stamp,
        ],
    )
    return get_allocation(db, allocation_id)


_UPDATABLE = frozenset(
    {
        "barcode",
        "size",
        "code_id",
        "proposed_door",
        "reservation_expires_at",
        "pickup_expires_at",
        "revision",
    }
)


def update_fields(db: Database, allocation_id: str, now: datetime, **fields: Any) -> Allocation:
    """Updates descriptive fields (not status or door: those have their own functions).

    Raises:
        ValueError: a field that cannot be set this way.
        UnknownAllocation: no such allocation.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    unknown = sorted(set(fields) - _UPDATABLE)
    if unknown:
        raise ValueError(f"cannot update allocation fields {unknown}")
    get_allocation(db, allocation_id)
    if fields:
        values = {k: _column(v) for k, v in fields.items()}
        sets = ", ".join(f"{name} = ?" for name in values)
        db.execute(
            f"UPDATE allocations SET {sets}, updated_at = ? WHERE allocation_id = ?",
            [*values.values(), to_db_time(now), allocation_id],
        )
    return get_allocation(db, allocation_id)


def move(
    db: Database,
    allocation_id: str,
    target: AllocationStatus,
    now: datetime,
    *,
    cancel_reason: str | None = None,
    pickup_expires_at: datetime | None = None,
) -> Allocation:
    """Moves an allocation to ``target``; its door follows.

    Args:
        db: The store's database, in a transaction.
        allocation_id: The allocation.
        target: The new status.
        now: When it happened.
        cancel_reason: Kept for a cancellation.
        pickup_expires_at: For a deposit: the end of the pickup window, unless already set.

    Raises:
        UnknownAllocation: no such allocation.
        IllegalTransition: the allocation or its door cannot make the move.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    allocation = get_allocation(db, allocation_id)
    allocation_transition(allocation.status, target)
    # A savepoint: if the door cannot follow, the status change is undone too, even when the
    # caller catches the error and goes on with its transaction.
    with db.atomic():
        _move(db, allocation, target, now, cancel_reason, pickup_expires_at)
    return get_allocation(db, allocation_id)


def _move(
    db: Database,
    allocation: Allocation,
    target: AllocationStatus,
    now: datetime,
    cancel_reason: str | None,
    pickup_expires_at: datetime | None,
) -> None:
    stamp = to_db_time(now)
    db.execute(
        "UPDATE allocations SET status = ?, updated_at = ?,"
        " deposited_at = CASE WHEN ? = 'deposited' THEN ? ELSE deposited_at END,"
        " pickup_expires_at = coalesce(pickup_expires_at, ?),"
        " finished_at = CASE WHEN ? THEN ? ELSE finished_at END,"
        " cancel_reason = coalesce(?, cancel_reason)"
        " WHERE allocation_id = ?",
        [
            target.value,
            stamp,
            target.value,
            stamp,
            _time(pickup_expires_at),
            int(target.is_final),
            stamp,
            cancel_reason,
            allocation.allocation_id,
        ],
    )
    if allocation.door is not None:
        _walk_door(db, allocation.door, _door_status_for(target), now)


def assign_door(db: Database, allocation_id: str, door: int | None, now: datetime) -> Allocation:
    """Gives a live allocation a new door (or none), releasing the one it held.

    The new door must be available; it takes the status that goes with the allocation's. The
    old door is freed if the allocation held it as a reservation (a door in maintenance stays
    there).

    Raises:
        UnknownAllocation, UnknownDoorRecord: no such allocation or door.
        IllegalTransition: the new door is not available.
        sqlite3.IntegrityError: the new door already holds a live allocation.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    allocation = get_allocation(db, allocation_id)
    if allocation.door == door:
        return allocation
    if door is not None:
        doors.get_door(db, door)
    # A savepoint: a refused new door leaves the old one held, even when the caller catches
    # the error and tries another door in the same transaction.
    with db.atomic():
        if allocation.door is not None and allocation.status.holds_door:
            old = doors.get_door(db, allocation.door)
            if old.status is not DoorStatus.MAINTENANCE:
                _walk_door(db, old.number, DoorStatus.AVAILABLE, now)
        db.execute(
            "UPDATE allocations SET door = ?, updated_at = ? WHERE allocation_id = ?",
            [door, to_db_time(now), allocation_id],
        )
        if door is not None and allocation.status.holds_door:
            _walk_door(db, door, _door_status_for(allocation.status), now)
    return get_allocation(db, allocation_id)


def insert_return(
    db: Database, allocation_id: str, order_id: str, reason: str | None, now: datetime
) -> None:
    """Records a return's request details (once; later calls keep the first).

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(
        "INSERT INTO returns (allocation_id, order_id, reason, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (allocation_id) DO NOTHING",
        [allocation_id, order_id, reason, to_db_time(now)],
    )


def _door_status_for(status: AllocationStatus) -> DoorStatus:
    return DOOR_STATUS_FOR_ALLOCATION.get(status, DoorStatus.AVAILABLE)


def _walk_door(db: Database, door: int, target: DoorStatus, now: datetime) -> None:
    # A free door reaches "awaiting collection" only through "occupied" in the state machine;
    # that happens when the cloud sends an already-expired parcel the kiosk had not seen.
    current = doors.get_door(db, door).status
    if current is DoorStatus.AVAILABLE and target is DoorStatus.AWAITING_COLLECTION:
        doors.set_status(db, door, DoorStatus.OCCUPIED, now)
    doors.set_status(db, door, target, now)


def _time(when: datetime | None) -> str | None:
    return None if when is None else to_db_time(when)


def _column(value: object) -> object:
    if isinstance(value, datetime):
        return to_db_time(value)
    if isinstance(value, Size):
        return value.value
    return value


def _allocation(row: Mapping[str, Any]) -> Allocation:
    return Allocation(
        allocation_id=row["allocation_id"],
        kind=AllocationKind(row["kind"]),
        barcode=row["barcode"],
        size=Size(row["size"]),
        door=row["door"],
        proposed_door=row["proposed_door"],
        status=AllocationStatus(row["status"]),
        code_id=row["code_id"],
        reservation_expires_at=from_db_time(row["reservation_expires_at"]),
        pickup_expires_at=from_db_time(row["pickup_expires_at"]),
        deposited_at=from_db_time(row["deposited_at"]),
        finished_at=from_db_time(row["finished_at"]),
        revision=row["revision"],
    )
