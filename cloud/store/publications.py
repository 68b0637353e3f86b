"""How far each location's change log is, and how far it has been published to its kiosks.

``locations.revision`` is the revision of the last change logged; ``location_publications``
holds, per location with a registered kiosk, the revision published through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud.store.database import Conn


@dataclass(frozen=True, slots=True)
class Publication:
    """A location's publication row with the log's revision, as a publishing worker holds it."""

    location_id: str
    published_revision: int
    revision: int


async def location_revision(conn: Conn, location_id: str) -> int | None:
    """The location's change-log revision, or None when there is no such location."""
    cur = await conn.execute(
        "SELECT revision FROM locations WHERE location_id = %s", (location_id,)
    )
    row = await cur.fetchone()
    return None if row is None else int(row["revision"])


async def start_publication(conn: Conn, location_id: str, revision: int) -> None:
    """Starts publishing the location's log after ``revision``, unless it is published already.

    Called when a kiosk is registered: a location's second kiosk keeps the first one's row.
    """
    await conn.execute(
        "INSERT INTO location_publications (location_id, published_revision)"
        " VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (location_id, revision),
    )


async def lock_publication(conn: Conn, location_id: str) -> Publication | None:
    """Locks the location's publication row until the end of the caller's transaction.

    Returns:
        The row, or None when the location has none (no kiosk registered) or another
        worker holds it (``SKIP LOCKED``: that worker is publishing it now).
    """
    cur = await conn.execute(
        "SELECT p.published_revision, l.revision FROM location_publications p"
        " JOIN locations l USING (location_id)"
        " WHERE p.location_id = %s FOR UPDATE OF p SKIP LOCKED",
        (location_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Publication(location_id, int(row["published_revision"]), int(row["revision"]))


async def mark_published(conn: Conn, location_id: str, through: int, now: datetime) -> None:
    """Records that the location's log is published through revision ``through``."""
    await conn.execute(
        "UPDATE location_publications SET published_revision = %s, published_at = %s"
        " WHERE location_id = %s",
        (through, now, location_id),
    )


async def locations_behind(conn: Conn) -> list[str]:
    """The locations whose log is ahead of what has been published."""
    cur = await conn.execute(
        "SELECT p.location_id FROM location_publications p"
        " JOIN locations l USING (location_id)"
        " WHERE l.revision > p.published_revision"
    )
    return [str(row["location_id"]) for row in await cur.fetchall()]
