"""Doors in the store: their sizes and statuses, the last sensor readings, faults.

Status changes go through the door state machine of ``shared/states.py``; an illegal move raises
`IllegalTransition` and writes nothing. Sensor readings are stored only when they change (the
monitor polls every 500 ms; writing each poll would wear the SD card for nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from kiosk.store.database import require_transaction
from kiosk.store.records import (
    ACTIVE_OPERATION_STATES,
    Door,
    from_db_time,
    optional_bool,
    to_db_time,
)
from shared.sizes import Size
from shared.states import DoorStatus, door_transition


class UnknownDoorRecord(LookupError):
    """A door number the store does not have (not in the kiosk's layout)."""

    def __init__(self, door: int) -> None:
        super().__init__(f"door {door} is not in this kiosk's layout")
        self.door = door


def sync_layout(db: Database, sizes: Mapping[int, Size], now: datetime) -> list[int]:
    """Makes the doors table match the configured layout.

    New doors are added as available. A door whose size changed is updated only while it is
    available or in maintenance (a parcel's door keeps the size it was chosen for). Doors that
    left the layout are kept (their parcels and history stay readable) but put in maintenance
    when free.

    Returns:
        The doors added.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    stamp = to_db_time(now)
    existing = {door.number: door for door in list_doors(db)}
    added: list[int] = []
    for number, size in sorted(sizes.items()):
        door = existing.get(number)
        if door is None:
            db.execute(
                "INSERT INTO doors (number, size, status, updated_at) VALUES (?, ?, ?, ?)",
                [number, size.value, DoorStatus.AVAILABLE.value, stamp],
            )
            added.append(number)
        elif door.size is not size and door.status in (
            DoorStatus.AVAILABLE,
            DoorStatus.MAINTENANCE,
        ):
            db.execute(
                "UPDATE doors SET size = ?, updated_at = ? WHERE number = ?",
                [size.value, stamp, number],
            )
    for number, door in existing.items():
        if number not in sizes and door.status is DoorStatus.AVAILABLE:
            set_status(db, number, DoorStatus.MAINTENANCE, now, reason="not in the layout")
    return added


def get_door(db: Database, number: int) -> Door:
    """The door ``number``.

    Raises:
        UnknownDoorRecord: no such door.
    """
    row = next(db.query("SELECT * FROM doors WHERE number = ?", [number]), None)
    if row is None:
        raise UnknownDoorRecord(number)
    return _door(row)


def list_doors(db: Database) -> list[Door]:
    """Every door, by number."""
    return [_door(row) for row in db.query("SELECT * FROM doors ORDER BY number")]


def set_status(
    db: Database, number: int, target: DoorStatus, now: datetime, *, reason: str | None = None
) -> Door:
    """Moves a door to ``target`` (no-op when it is there already).

    ``reason`` is kept while the door is in maintenance and cleared when it leaves.

    Raises:
        UnknownDoorRecord: no such door.
        IllegalTransition: the state machine does not allow the move.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    door = get_door(db, number)
    if door.status is target:
        return door
    door_transition(door.status, target)
    kept_reason = reason if target is DoorStatus.MAINTENANCE else None
    db.execute(
        "UPDATE doors SET status = ?, maintenance_reason = ?, updated_at = ? WHERE number = ?",
        [target.value, kept_reason, to_db_time(now), number],
    )
    return get_door(db, number)


def record_sensors(
    db: Database, number: int, is_open: bool, occupied: bool | None, now: datetime
) -> bool:
    """Stores a sensor reading if it differs from the last one.

    A door that reads shut again has its left-open alert reset, so the next opening can raise
    its own.

    Returns:
        Whether the reading changed.

    Raises:
        UnknownDoorRecord: no such door.
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    door = get_door(db, number)
    if door.sensor_open == is_open and door.sensor_occupied == occupied:
        return False
    alerted = door.left_open_alerted_at if is_open else None
    changed_at = door.sensor_changed_at if door.sensor_open == is_open else now
    db.execute(
        "UPDATE doors SET sensor_open = ?, sensor_occupied = ?, sensor_changed_at = ?,"
        " left_open_alerted_at = ? WHERE number = ?",
        [
            int(is_open),
            None if occupied is None else int(occupied),
            None if changed_at is None else to_db_time(changed_at),
            None if alerted is None else to_db_time(alerted),
            number,
        ],
    )
    return True


def set_fault(db: Database, number: int, fault: str | None, now: datetime) -> None:
    """Records (or with None clears) the door's last hardware fault.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(
        "UPDATE doors SET fault = ?, updated_at = ? WHERE number = ?",
        [fault, to_db_time(now), number],
    )


def mark_left_open_alerted(db: Database, number: int, now: datetime) -> None:
    """Remembers that the current opening of the door has raised its alert.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    db.execute(
        "UPDATE doors SET left_open_alerted_at = ? WHERE number = ?", [to_db_time(now), number]
    )


def find_free_door(
    db: Database, size: Size, exclude: Iterable[int] = (), *, accessible: bool = False
) -> Door | None:
    """The smallest available door of ``size`` or larger with no operation under way
    (``accessible``: only among the doors the cloud flagged within reach).

    Ties go to the lowest door number, so the choice is predictable for drivers and tests.
    """
    excluded = sorted(set(exclude))
    candidates = [
        _door(row)
        for row in db.query(
            "SELECT * FROM doors WHERE status = ? AND (accessible = 1 OR NOT ?) AND number NOT IN"
            " (SELECT door FROM door_operations WHERE state IN ("
            + ", ".join("?" for _ in ACTIVE_OPERATION_STATES)
            + "))",
            [
                DoorStatus.AVAILABLE.value,
                int(accessible),
                *sorted(s.value for s in ACTIVE_OPERATION_STATES),
            ],
        )
    ]
    fitting = [
        door for door in candidates if door.size.rank >= size.rank and door.number not in excluded
    ]
    fitting.sort(key=lambda door: (door.size.rank, door.number))
    return fitting[0] if fitting else None


def _door(row: Mapping[str, Any]) -> Door:
    return Door(
        number=row["number"],
        size=Size(row["size"]),
        status=DoorStatus(row["status"]),
        maintenance_reason=row["maintenance_reason"],
        sensor_open=optional_bool(row["sensor_open"]),
        sensor_occupied=optional_bool(row["sensor_occupied"]),
        sensor_changed_at=from_db_time(row["sensor_changed_at"]),
        fault=row["fault"],
        left_open_alerted_at=from_db_time(row["left_open_alerted_at"]),
    )
