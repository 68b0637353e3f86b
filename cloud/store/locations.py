"""Location rows: creating and changing them, reading them, and the nearest-neighbour search.

Coordinates are stored twice: as latitude/longitude for people, and as a point on the unit
sphere (a ``cube`` of three coordinates) for the GiST index (``cloud.locations`` says why).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.errors import UniqueViolation

from cloud.store.database import Conn
from shared.sizes import Size


async def insert(
    conn: Conn,
    *,
    location_id: str,
    name: str,
    address: str,
    latitude: float,
    longitude: float,
    unit_vector: Sequence[float],
    timezone: str,
    operating_hours: Mapping[str, Any] | None,
    now: datetime,
) -> bool:
    """Inserts a location.

    Returns:
        False if the location id is taken (nothing inserted).
    """
    try:
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO locations (location_id, name, address, latitude, longitude, geo,
                                       timezone, operating_hours, created_at)
                VALUES (%s, %s, %s, %s, %s, cube(%s::float8[]), %s, %s, %s)
                """,
                (
                    location_id,
                    name,
                    address,
                    latitude,
                    longitude,
                    list(unit_vector),
                    timezone,
                    None if operating_hours is None else json.dumps(operating_hours),
                    now,
                ),
            )
    except UniqueViolation:
        return False
    return True


# The columns `update` may change; names in SQL come from here only, never from the caller.
UPDATABLE = frozenset({"name", "address", "timezone", "operating_hours", "active"})


async def update(conn: Conn, location_id: str, values: Mapping[str, Any]) -> bool:
    """Changes columns of `UPDATABLE` (``operating_hours`` as a mapping or None).

    Returns:
        False if there is no such location.
    """
    assert set(values) <= UPDATABLE, "the caller checks the columns"
    params = dict(values)
    if params.get("operating_hours") is not None:
        params["operating_hours"] = json.dumps(params["operating_hours"])
    assignments = ", ".join(f"{column} = %({column})s" for column in sorted(params))
    cur = await conn.execute(
        f"UPDATE locations SET {assignments} WHERE location_id = %(location_id)s"
        " RETURNING location_id",
        {**params, "location_id": location_id},
    )
    return await cur.fetchone() is not None


async def get(conn: Conn, location_id: str) -> dict[str, Any] | None:
    """A location's descriptive fields, coordinates and ``active`` flag."""
    cur = await conn.execute(
        "SELECT location_id, name, address, latitude, longitude, timezone, operating_hours,"
        " active FROM locations WHERE location_id = %s",
        (location_id,),
    )
    row = await cur.fetchone()
    return None if row is None else dict(row)


async def free_door_counts(conn: Conn, location_id: str) -> dict[str, int]:
    """The location's free doors per size (every size present, 0 if none)."""
    cur = await conn.execute(
        "SELECT size, count(*) AS n FROM doors WHERE location_id = %s AND status = 'available'"
        " GROUP BY size",
        (location_id,),
    )
    counts = {size.value: 0 for size in Size}
    for row in await cur.fetchall():
        counts[row["size"]] = row["n"]
    return counts


NEAREST_SQL = """
    SELECT l.location_id, l.name, l.address, l.latitude, l.longitude, l.timezone,
           l.operating_hours, l.chord, f.small, f.medium, f.large, f.xlarge
    FROM (
        SELECT location_id, name, address, latitude, longitude, timezone, operating_hours,
               geo <-> cube(%(point)s::float8[]) AS chord
        FROM locations
        WHERE active AND location_id IS DISTINCT FROM %(exclude)s
        ORDER BY geo <-> cube(%(point)s::float8[])
        LIMIT %(scan)s
    ) l
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE size_rank = 0) AS small,
               count(*) FILTER (WHERE size_rank = 1) AS medium,
               count(*) FILTER (WHERE size_rank = 2) AS large,
               count(*) FILTER (WHERE size_rank = 3) AS xlarge,
               count(*) FILTER (WHERE size_rank >= %(rank)s) AS fitting
        FROM doors d
        WHERE d.location_id = l.location_id AND d.status = 'available'
    ) f
    WHERE f.fitting > 0
    ORDER BY l.chord
    LIMIT %(limit)s
"""


async def nearest(conn: Conn, params: Mapping[str, Any], scan: int) -> list[dict[str, Any]]:
    """One round of `NEAREST_SQL` over the ``scan`` nearest active locations."""
    cur = await conn.execute(NEAREST_SQL, {**params, "scan": scan})
    return [dict(row) for row in await cur.fetchall()]


async def count_active(conn: Conn) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM locations WHERE active")
    row = await cur.fetchone()
    return 0 if row is None else int(row["n"])
