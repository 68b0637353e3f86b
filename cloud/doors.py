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
from cloud.store.records import Door, DoorAccessNote, DoorLabelNote
from cloud.store.transaction import Unit, unit
from shared.sizes import Dimensions, Size
from shared.states import DoorStatus, IllegalTransition, door_transition


@dataclass(frozen=True, slots=True)
class DoorSpec:
    door_number: int
    size: Size
    dimensions: Dimensions | None = None  # None: the standard interior for the size
    label: str | None = None  # None: see `default_label`
    column: int | None = None
    row: int | None = None
    accessible: bool = False  # within reach (e.g. the lowest rows)

    def interior(self) -> Dimensions:
        return self.dimensions or self.size.dimensions

    def effective_label(self) -> str:
        if self.label is not None:
            return self.label
        return default_label(self.door_number, self.column, self.row)


def default_label(door_number: int, column: int | None, row: int | None) -> str:
    """A door's label when none is given: column letter and row (``B5``: second column, fifth
    row from the top), as printed on the doors of a lettered bank; else the door's number."""
    if column is not None and row is not None:
        return f"{chr(ord('A') + column - 1)}{row}"
    return str(door_number)


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
    labels = [d.effective_label() for d in doors]
    if len(set(labels)) != len(labels):
        raise errors.BadRequest("door labels repeat within the request")
    async with unit(conn, now) as work:
        added = await store_doors.add(
            conn,
            location_id,
            [
                (d.door_number, d.effective_label(), d.size, d.interior(), d.accessible)
                for d in doors
            ],
            now,
        )
        if not added:
            raise errors.AlreadyExists(
                f"location {location_id!r} already has one of doors {sorted(numbers)}"
                f" or labels {sorted(labels)}"
            )
        # A registered kiosk learns each new door's label (and reach) from the change log.
        # Before one is registered nothing is logged (the revisions stay those of the parcels):
        # registering a kiosk announces every door (`announce_labels`), and any later snapshot
        # lists them all.
        if await store_doors.has_kiosk(conn, location_id):
            for d in doors:
                work.labelled(DoorLabelNote(location_id, d.door_number, d.effective_label()))
                if d.accessible:
                    work.access_changed(DoorAccessNote(location_id, d.door_number, True))


async def announce_labels(conn: Conn, location_id: str, now: datetime) -> None:
    """Logs every door's label and reach in the location's change log (a kiosk was just
    registered).

    Labels of doors created before any kiosk was registered are not in the log, and a kiosk's
    first catch-up is changes, not a snapshot, when the log is empty; this puts them there.
    """
    async with unit(conn, now) as work:
        for door in await store_doors.list_with_holders(conn, location_id):
            work.labelled(DoorLabelNote(location_id, door.door_number, door.label))
            if door.accessible:
                work.access_changed(DoorAccessNote(location_id, door.door_number, True))


async def relabel(
    conn: Conn, location_id: str, door_number: int, label: str, now: datetime
) -> Door:
    """Gives a door another label; the location's kiosks get it in the change log.

    Raises:
        DoorNotFound, AlreadyExists: another door of the location has the label.
    """
    async with unit(conn, now) as work:
        door = await store_doors.relabel(conn, location_id, door_number, label)
        if door is None:
            raise errors.DoorNotFound(f"no door {door_number} at {location_id!r}")
        work.labelled(DoorLabelNote(location_id, door_number, label))
    return door


async def set_accessible(
    conn: Conn, location_id: str, door_number: int, accessible: bool, now: datetime
) -> Door:
    """Flags a door as within reach (or not), for allocations that ask for one; the location's
    kiosks get it in the change log (``door_access``), for the doors they substitute.

    Raises:
        DoorNotFound.
    """
    async with unit(conn, now) as work:
        door = await store_doors.set_accessible(conn, location_id, door_number, accessible)
        if door is None:
            raise errors.DoorNotFound(f"no door {door_number} at {location_id!r}")
        work.access_changed(DoorAccessNote(location_id, door_number, accessible))
    return door


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
