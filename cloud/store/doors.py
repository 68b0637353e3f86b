"""Door rows: reading them as `Door` records, claiming a free one, and every status write.

Every status write goes through `set_status` (or `claim_free`, the one move from available to
reserved), which checks the shared door transition table in SQL: each row moves only from a
status the table allows to reach the target, and a row that could not is reported, not skipped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from psycopg.errors import UniqueViolation

from cloud import errors
from cloud.store.database import Conn
from cloud.store.records import Door, MaintenanceNote
from shared.sizes import Dimensions, Size
from shared.states import (
    DOOR_TRANSITIONS,
    LIVE_ALLOCATION_STATUSES,
    DoorStatus,
    IllegalTransition,
    door_transition,
    sources,
)

if TYPE_CHECKING:
    from cloud.store.transaction import Unit

# A door whose interior fits a parcel of sorted sides a <= b <= c (all NULL: no dimensions
# given, any door of the size fits). The door's sides are sorted the same way in SQL.
FIT_SQL = """(%(a)s::real IS NULL OR (
          least(width_in, height_in, depth_in) >= %(a)s
          AND width_in + height_in + depth_in
              - least(width_in, height_in, depth_in)
              - greatest(width_in, height_in, depth_in) >= %(b)s
          AND greatest(width_in, height_in, depth_in) >= %(c)s))"""


def fit_params(dimensions: Dimensions | None) -> dict[str, float | None]:
    """The parameters of `FIT_SQL`."""
    if dimensions is None:
        return {"a": None, "b": None, "c": None}
    a, b, c = dimensions.sorted_sides()
    return {"a": a, "b": b, "c": c}


_LIVE = sorted(s.value for s in LIVE_ALLOCATION_STATUSES)


async def location_exists(conn: Conn, location_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM locations WHERE location_id = %s", (location_id,))
    return await cur.fetchone() is not None


async def set_accessible(
    conn: Conn, location_id: str, door_number: int, accessible: bool
) -> Door | None:
    cur = await conn.execute(
        f"UPDATE doors d SET accessible = %s WHERE d.location_id = %s AND d.door_number = %s"
        f" RETURNING {_DOOR_COLUMNS}, NULL::uuid AS allocation_id",
        (accessible, location_id, door_number),
    )
    row = await cur.fetchone()
    return None if row is None else Door.from_row(row)


async def relabel(conn: Conn, location_id: str, door_number: int, label: str) -> Door | None:
    """Sets a door's label (None: no such door).

    Raises:
        AlreadyExists: another door of the location has the label.
    """
    try:
        async with conn.transaction():
            cur = await conn.execute(
                f"UPDATE doors d SET label = %s WHERE d.location_id = %s AND d.door_number = %s"
                f" RETURNING {_DOOR_COLUMNS}, NULL::uuid AS allocation_id",
                (label, location_id, door_number),
            )
            row = await cur.fetchone()
    except UniqueViolation:
        raise errors.AlreadyExists(
            f"another door at {location_id!r} is labelled {label!r}"
        ) from None
    return None if row is None else Door.from_row(row)


async def free_counts(conn: Conn, location_id: str) -> list[tuple[Size, bool, int]]:
    """(size, accessible, how many) of the location's free doors."""
    cur = await conn.execute(
        "SELECT size, accessible, count(*) AS n FROM doors"
        " WHERE location_id = %s AND status = 'available' GROUP BY size, accessible",
        (location_id,),
    )
    return [(Size(r["size"]), r["accessible"], r["n"]) for r in await cur.fetchall()]


async def has_kiosk(conn: Conn, location_id: str) -> bool:
    """Whether a kiosk is registered at the location (it then follows its change log)."""
    cur = await conn.execute("SELECT 1 FROM kiosks WHERE location_id = %s LIMIT 1", (location_id,))
    return await cur.fetchone() is not None


async def add(
    conn: Conn,
    location_id: str,
    doors: Sequence[tuple[int, str, Size, Dimensions, bool]],
    now: datetime,
) -> bool:
    """Adds available doors (number, label, size, interior, accessible) to a location, all or
    none.

    Returns:
        False if one of the door numbers or labels is taken (nothing added).
    """
    try:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                """
                INSERT INTO doors (location_id, door_number, label, size, size_rank, status,
                                   width_in, height_in, depth_in, status_changed_at, accessible)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                [
                    (location_id, number, label, size.value, size.rank,
                     DoorStatus.AVAILABLE.value, inside.length, inside.width, inside.height, now,
                     accessible)
                    for number, label, size, inside, accessible in doors
                ],
            )  # fmt: skip
    except UniqueViolation:
        return False
    return True


_DOOR_COLUMNS = """d.door_id, d.location_id, d.door_number, d.label, d.accessible, d.size,
    d.status, d.width_in, d.height_in, d.depth_in, d.maintenance_reason, d.status_changed_at"""


async def list_with_holders(conn: Conn, location_id: str) -> list[Door]:
    """The doors of a location by number, each with its live allocation if any."""
    cur = await conn.execute(
        f"""
        SELECT {_DOOR_COLUMNS}, a.allocation_id
        FROM doors d
        LEFT JOIN allocations a ON a.door_id = d.door_id AND a.status = ANY(%s)
        WHERE d.location_id = %s
        ORDER BY d.door_number
        """,
        (_LIVE, location_id),
    )
    return [Door.from_row(row) for row in await cur.fetchall()]


async def lock(conn: Conn, location_id: str, door_number: int) -> Door | None:
    """The door, row-locked to the end of the transaction."""
    cur = await conn.execute(
        f"SELECT {_DOOR_COLUMNS} FROM doors d WHERE d.location_id = %s AND d.door_number = %s"
        " FOR UPDATE",
        (location_id, door_number),
    )
    row = await cur.fetchone()
    return None if row is None else Door.from_row(row)


async def claim_free(
    work: Unit,
    location_id: str,
    size: Size,
    dimensions: Dimensions | None = None,
    exclude_door_id: int | None = None,
) -> Door | None:
    """Marks the smallest free door of ``size`` or larger as reserved and returns it.

    Smallest size first, then lowest door number, so large doors stay free for large parcels.
    With ``dimensions``, the door's own interior must fit them too (doors may be built larger or
    smaller than the standard for their size). The sub-select takes the row with ``FOR UPDATE
    SKIP LOCKED``, so concurrent claims never pick the same door.
    """
    cur = await work.conn.execute(
        f"""
        UPDATE doors d SET status = %(to)s, status_changed_at = %(now)s
        WHERE door_id = (
            SELECT door_id FROM doors
            WHERE location_id = %(loc)s AND status = 'available' AND size_rank >= %(rank)s
              AND door_id IS DISTINCT FROM %(exclude)s AND {FIT_SQL}
            ORDER BY size_rank, door_number
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
        RETURNING {_DOOR_COLUMNS}, NULL::uuid AS allocation_id
        """,
        {
            "to": door_transition(DoorStatus.AVAILABLE, DoorStatus.RESERVED).value,
            "now": work.now,
            "loc": location_id,
            "rank": size.rank,
            "exclude": exclude_door_id,
            **fit_params(dimensions),
        },
    )
    row = await cur.fetchone()
    return None if row is None else Door.from_row(row)


async def set_status(
    work: Unit,
    door_ids: Collection[int],
    target: DoorStatus,
    *,
    table: Mapping[DoorStatus, frozenset[DoorStatus]] = DOOR_TRANSITIONS,
    only_from: Collection[DoorStatus] | None = None,
) -> None:
    """Moves doors to ``target``; a door already there stays as it is.

    ``table`` is the shared table the move must be in (`FACT_DOOR_TRANSITIONS` for a kiosk's
    physical fact). With ``only_from``, doors in another status are left alone (freeing a door
    "unless it went into maintenance meanwhile").

    Raises:
        IllegalTransition: a door's status cannot move to ``target`` (nothing is written).
    """
    if not door_ids:
        return
    allowed = sources(table, target)
    if only_from is not None:
        allowed = [s for s in allowed if s in only_from]
    cur = await work.conn.execute(
        """
        WITH target AS (
            SELECT door_id, status AS before FROM doors WHERE door_id = ANY(%(ids)s) FOR UPDATE
        ), moved AS (
            UPDATE doors d SET status = %(to)s, status_changed_at = %(now)s,
                   maintenance_reason = CASE WHEN %(to)s = %(maintenance)s
                                             THEN d.maintenance_reason END
            FROM target t
            WHERE d.door_id = t.door_id AND t.before = ANY(%(from)s)
            RETURNING d.door_id
        )
        SELECT t.door_id, t.before FROM target t
        WHERE t.door_id NOT IN (SELECT door_id FROM moved)
        """,
        {
            "ids": list(door_ids),
            "to": target.value,
            "now": work.now,
            "maintenance": DoorStatus.MAINTENANCE.value,
            "from": [s.value for s in allowed],
        },
    )
    for row in await cur.fetchall():
        before = DoorStatus(row["before"])
        if before is target or (only_from is not None and before not in only_from):
            continue
        # The caller's unit rolls back whatever this call did move.
        raise IllegalTransition("DoorStatus", before.value, target.value)


async def put_in_maintenance(work: Unit, door: Door, reason: str) -> None:
    """Takes the door out of service (again: only the reason changes); notes it for the log.

    Raises:
        IllegalTransition: the door holds a parcel (or is awaiting collection).
    """
    if door.status is not DoorStatus.MAINTENANCE:
        await set_status(work, [door.door_id], DoorStatus.MAINTENANCE)
    await work.conn.execute(
        "UPDATE doors SET maintenance_reason = %s WHERE door_id = %s", (reason, door.door_id)
    )
    work.maintenance(MaintenanceNote(door.location_id, door.door_number, True, reason))


async def return_to_service(work: Unit, door: Door) -> None:
    """Puts a door in maintenance back in service; notes it for the log."""
    await set_status(work, [door.door_id], DoorStatus.AVAILABLE, only_from=[DoorStatus.MAINTENANCE])
    work.maintenance(MaintenanceNote(door.location_id, door.door_number, False))


async def reload(conn: Conn, door_id: int) -> Door:
    """The door as it is now in this transaction."""
    cur = await conn.execute(
        f"SELECT {_DOOR_COLUMNS}, NULL::uuid AS allocation_id FROM doors d WHERE d.door_id = %s",
        (door_id,),
    )
    row = await cur.fetchone()
    assert row is not None, "doors are never deleted"
    return Door.from_row(row)
