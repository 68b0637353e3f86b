"""Doors of a location: adding them, listing them, maintenance.

Taking a door out of service never strands a parcel: a door with a parcel inside
must be emptied first, and a door merely reserved hands its reservation to another
free door of the same size or larger (the carrier sees the new locker number).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cloud import errors
from cloud.store import allocations
from cloud.store import doors as store_doors
from cloud.store.database import Conn
from cloud.store.records import Door
from cloud.store.transaction import Unit, unit
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
    if not await store_doors.location_exists(conn, location_id):
        raise errors.LocationNotFound(f"no location {location_id!r}")
    numbers = [d.door_number for d in doors]
    if len(set(numbers)) != len(numbers):
        raise errors.BadRequest("door numbers repeat within the request")
    added = await store_doors.add(
        conn, location_id, [(d.door_number, d.size, d.interior()) for d in doors], now
    )
    if not added:
        raise errors.AlreadyExists(
            f"location {location_id!r} already has one of doors {sorted(numbers)}"
        )


async def list_doors(conn: Conn, location_id: str) -> list[Door]:
    """The doors of a location by number, with the allocation holding each.

    Raises:
        LocationNotFound.
    """
    found = await store_doors.list_with_holders(conn, location_id)
    if not found and not await store_doors.location_exists(conn, location_id):
        raise errors.LocationNotFound(f"no location {location_id!r}")
    return found


async def _lock_door(conn: Conn, location_id: str, door_number: int) -> Door:
    door = await store_doors.lock(conn, location_id, door_number)
    if door is None:
        raise errors.DoorNotFound(f"no door {door_number} at {location_id!r}")
    return door


def _check(current: DoorStatus, target: DoorStatus, why: str) -> None:
    try:
        door_transition(current, target)
    except IllegalTransition:
        raise errors.WrongState(why, details={"door_status": current.value}) from None


async def set_maintenance(
    conn: Conn, location_id: str, door_number: int, reason: str, now: datetime
) -> Door:
    """Takes a door out of service (again: only the reason changes).

    Raises:
        DoorNotFound, WrongState: a parcel is inside, or a reservation has nowhere to go.
    """
    async with unit(conn, now) as work:
        door = await _lock_door(conn, location_id, door_number)
        if door.status is not DoorStatus.MAINTENANCE:
            _check(door.status, DoorStatus.MAINTENANCE, "empty the door before maintenance")
            if door.status is DoorStatus.RESERVED:
                await _move_reservation(work, door)
        await store_doors.put_in_maintenance(work, door, reason)
        return await store_doors.reload(conn, door.door_id)


async def _move_reservation(work: Unit, door: Door) -> None:
    """Moves the door's reservation to another free door of its size or larger.

    Raises:
        WrongState: there is none.
    """
    holder = await allocations.lock_live_on_door(work.conn, door.door_id)
    if holder is None:
        return
    replacement = await store_doors.claim_free(
        work, door.location_id, holder.size, exclude_door_id=door.door_id
    )
    if replacement is None:
        raise errors.WrongState(
            "the door's reservation has no other free door to move to",
            details={"allocation_id": str(holder.allocation_id)},
        )
    await allocations.move_to_door(work, [holder.allocation_id], replacement.door_id)


async def clear_maintenance(conn: Conn, location_id: str, door_number: int, now: datetime) -> Door:
    """Puts a door back in service. A door already in service is left as it is.

    Raises:
        DoorNotFound.
    """
    async with unit(conn, now) as work:
        door = await _lock_door(conn, location_id, door_number)
        if door.status is not DoorStatus.MAINTENANCE:
            return door
        await store_doors.return_to_service(work, door)
        return await store_doors.reload(conn, door.door_id)
