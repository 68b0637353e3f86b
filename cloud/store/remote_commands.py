"""Remote door openings queued by the admin API for the sync workers to sign and publish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cloud.store.database import Conn


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """A row of ``remote_commands``. ``status``: ``pending``, ``published`` or ``expired``."""

    command_id: uuid.UUID
    location_id: str
    door_number: int
    reason: str
    requested_by: str
    created_at: datetime
    expires_at: datetime
    status: str
    published_at: datetime | None


async def door_exists(conn: Conn, location_id: str, door_number: int) -> bool | None:
    """Whether the location has the door: None when there is no such location."""
    # One statement for both answers: the location's row is there even without the door.
    cur = await conn.execute(
        "SELECT l.location_id, d.door_number FROM locations l"
        " LEFT JOIN doors d ON d.location_id = l.location_id AND d.door_number = %s"
        " WHERE l.location_id = %s",
        (door_number, location_id),
    )
    found = await cur.fetchone()
    if found is None:
        return None
    return found["door_number"] is not None


async def insert(
    conn: Conn,
    *,
    command_id: uuid.UUID,
    location_id: str,
    door_number: int,
    reason: str,
    requested_by: str,
    created_at: datetime,
    expires_at: datetime,
) -> RemoteCommand:
    """Queues a command (``pending``); its insert wakes the sync workers (a trigger)."""
    cur = await conn.execute(
        """
        INSERT INTO remote_commands (command_id, location_id, door_number, reason, requested_by,
                                     created_at, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        RETURNING *
        """,
        (command_id, location_id, door_number, reason, requested_by, created_at, expires_at),
    )
    row = await cur.fetchone()
    assert row is not None
    return RemoteCommand(**row)


async def lock_pending(conn: Conn, limit: int) -> list[RemoteCommand]:
    """Locks up to ``limit`` pending commands, oldest first, until the caller's transaction ends.

    Commands another worker has locked are skipped (``SKIP LOCKED``): it is sending them.
    """
    cur = await conn.execute(
        "SELECT * FROM remote_commands WHERE status = 'pending'"
        " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [RemoteCommand(**row) for row in await cur.fetchall()]


async def mark_expired(conn: Conn, command_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE remote_commands SET status = 'expired' WHERE command_id = %s", (command_id,)
    )


async def mark_published(conn: Conn, command_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE remote_commands SET status = 'published', published_at = %s WHERE command_id = %s",
        (now, command_id),
    )
