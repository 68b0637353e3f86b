"""What a location's snapshot reads besides the live allocations: one consistent moment."""

from __future__ import annotations

from dataclasses import dataclass

from cloud.store.database import Conn


@dataclass(frozen=True, slots=True)
class MaintenanceDoor:
    """A door in maintenance, as a snapshot lists it."""

    door: int
    reason: str | None


async def read_one_moment(conn: Conn) -> None:
    """Makes the caller's transaction, just opened, read one snapshot of the database.

    REPEATABLE READ, READ ONLY: every later read in the transaction sees the same commits.
    Must be the transaction's first statement.
    """
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


async def door_labels(conn: Conn, location_id: str) -> list[tuple[int, str]]:
    """(number, label) of every door of the location, by number."""
    cur = await conn.execute(
        "SELECT door_number, label FROM doors WHERE location_id = %s ORDER BY door_number",
        (location_id,),
    )
    return [(row["door_number"], row["label"]) for row in await cur.fetchall()]


async def accessible_doors(conn: Conn, location_id: str) -> list[int]:
    """The numbers of the location's doors flagged within reach, in order."""
    cur = await conn.execute(
        "SELECT door_number FROM doors WHERE location_id = %s AND accessible ORDER BY door_number",
        (location_id,),
    )
    return [row["door_number"] for row in await cur.fetchall()]


async def maintenance_doors(conn: Conn, location_id: str) -> list[MaintenanceDoor]:
    """The location's doors in maintenance, by number."""
    cur = await conn.execute(
        "SELECT door_number AS door, maintenance_reason AS reason FROM doors"
        " WHERE location_id = %s AND status = 'maintenance' ORDER BY door_number",
        (location_id,),
    )
    return [MaintenanceDoor(**row) for row in await cur.fetchall()]
