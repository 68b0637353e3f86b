"""Doors of a location: adding them, listing them, maintenance.

Taking a door out of service never strands a parcel: a door with a parcel inside
must be emptied first, and a door merely reserved hands its reservation to another
free door of the same size or larger (the carrier sees the new locker number).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow

from cloud import changelog, errors
from cloud.allocation import claim_free_door
from cloud.store.database import Conn
from shared.sizes import Dimensions, Size
from shared.states import DoorStatus, IllegalTransition, door_transition


@dataclass(frozen=True, slots=True)
class DoorSpec:
    door_number: int
    size: Size
    dimensions: Dimensions | None = None  # None: the standard interior for the size

    def interior(self) -> Dimensions:
        return self.dimensions or self.size.dimensions


async def add_doors(conn: Conn, location_id: str, doors: Sequence[DoorSpec], now: datetime) -> None:
    """Adds doors to a location, all or none.

    Raises:
        LocationNotFound, AlreadyExists: a door number is taken.
    """
    cur = await conn.execute("SELECT 1 FROM locations WHERE location_id = %s", (location_id,))
    if await cur.fetchone() is None:
        raise errors.LocationNotFound(f"no location {location_id!r}")
    numbers = [d.door_number for d in doors]
    if len(set(numbers)) != len(numbers):
        raise errors.BadRequest("door numbers repeat within the request")
    try:
        async with conn.transaction(), conn.cursor() as cur2:
            await cur2.executemany(
                """
                INSERT INTO doors (location_id, door_number, size, size_rank, status,
                                   width_in, height_in, depth_in, status_changed_at)
                VALUES (%s, %s, %s, %s, 'available', %s, %s, %s, %s)
                """,
                [
                    (
                        location_id,
                        d.door_number,
                        d.size.value,
                        d.size.rank,
                        d.interior().length,
                        d.interior().width,
                        d.interior().height,
                        now,
                    )
                    for d in doors
                ],
            )
    except UniqueViolation:
        raise errors.AlreadyExists(
            f"location {location_id!r} already has one of doors {sorted(numbers)}"
        ) from None


async def list_doors(conn: Conn, location_id: str) -> list[DictRow]:
    cur = await conn.execute(
        """
        SELECT d.door_number, d.size, d.status, d.width_in, d.height_in, d.depth_in,
               d.maintenance_reason, d.status_changed_at, a.allocation_id
        FROM doors d
        LEFT JOIN allocations a
          ON a.door_id = d.door_id AND a.status IN ('reserved', 'deposited', 'expired')
        WHERE d.location_id = %s
        ORDER BY d.door_number
        """,
        (location_id,),
    )
    rows = await cur.fetchall()
    if not rows:
        exists = await conn.execute(
            "SELECT 1 FROM locations WHERE location_id = %s", (location_id,)
        )
        if await exists.fetchone() is None:
            raise errors.LocationNotFound(f"no location {location_id!r}")
    return rows


async def _lock_door(conn: Conn, location_id: str, door_number: int) -> DictRow:
    cur = await conn.execute(
        "SELECT * FROM doors WHERE location_id = %s AND door_number = %s FOR UPDATE",
        (location_id, door_number),
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.DoorNotFound(f"no door {door_number} at {location_id!r}")
    return row


def _check(current: str, target: DoorStatus, why: str) -> None:
    try:
        door_transition(DoorStatus(current), target)
    except IllegalTransition:
        raise errors.WrongState(why, details={"door_status": current}) from None


async def set_maintenance(
    conn: Conn, location_id: str, door_number: int, reason: str, now: datetime
) -> DictRow:
    """Takes a door out of service (again: only the reason changes).

    Raises:
        DoorNotFound, WrongState: a parcel is inside, or a reservation has nowhere to go.
    """
    async with conn.transaction():
        door = await _lock_door(conn, location_id, door_number)
        moved = None
        if door["status"] != DoorStatus.MAINTENANCE:
            _check(door["status"], DoorStatus.MAINTENANCE, "empty the door before maintenance")
            if door["status"] == DoorStatus.RESERVED:
                moved = await _move_reservation(conn, door, now)
        cur = await conn.execute(
            "UPDATE doors SET status = 'maintenance', maintenance_reason = %s,"
            " status_changed_at = CASE WHEN status = 'maintenance' THEN status_changed_at"
            " ELSE %s END WHERE door_id = %s RETURNING *",
            (reason, now, door["door_id"]),
        )
        row = await cur.fetchone()
        assert row is not None
        await changelog.record(
            conn,
            now,
            allocations=[] if moved is None else [moved],
            maintenance=[changelog.MaintenanceNote(location_id, door_number, True, reason)],
        )
        return row


async def _move_reservation(conn: Conn, door: DictRow, now: datetime) -> uuid.UUID | None:
    """Moves the door's reservation to another free door; returns the allocation moved."""
    cur = await conn.execute(
        "SELECT allocation_id, size FROM allocations"
        " WHERE door_id = %s AND status = 'reserved' FOR UPDATE",
        (door["door_id"],),
    )
    allocation = await cur.fetchone()
    if allocation is None:
        return None
    replacement = await claim_free_door(
        conn, door["location_id"], Size(allocation["size"]), now, exclude_door_id=door["door_id"]
    )
    if replacement is None:
        raise errors.WrongState(
            "the door's reservation has no other free door to move to",
            details={"allocation_id": str(allocation["allocation_id"])},
        )
    await conn.execute(
        "UPDATE allocations SET door_id = %s, updated_at = %s WHERE allocation_id = %s",
        (replacement["door_id"], now, allocation["allocation_id"]),
    )
    moved: uuid.UUID = allocation["allocation_id"]
    return moved


async def clear_maintenance(
    conn: Conn, location_id: str, door_number: int, now: datetime
) -> DictRow:
    """Puts a door back in service. A door already in service is left as it is.

    Raises:
        DoorNotFound.
    """
    async with conn.transaction():
        door = await _lock_door(conn, location_id, door_number)
        if door["status"] != DoorStatus.MAINTENANCE:
            return door
        cur = await conn.execute(
            "UPDATE doors SET status = 'available', maintenance_reason = NULL,"
            " status_changed_at = %s WHERE door_id = %s RETURNING *",
            (now, door["door_id"]),
        )
        row = await cur.fetchone()
        assert row is not None
        await changelog.record(
            conn, now, maintenance=[changelog.MaintenanceNote(location_id, door_number, False)]
        )
        return row
