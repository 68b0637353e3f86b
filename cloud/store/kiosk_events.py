"""Kiosk event rows: each kiosk's cursor and the events it sent, applied once in order."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from cloud.store.database import Conn
from shared.protocol import EventRecord


async def cursor(conn: Conn, kiosk_id: str, *, lock: bool) -> int | None:
    """The kiosk's last applied sequence (None: no cursor, an unknown kiosk).

    With ``lock``, the cursor row is locked to the end of the transaction, so two workers never
    apply one kiosk's events at once.
    """
    cur = await conn.execute(
        "SELECT through_sequence FROM kiosk_cursors WHERE kiosk_id = %s"
        + (" FOR UPDATE" if lock else ""),
        (kiosk_id,),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["through_sequence"])


async def event_id_at(conn: Conn, kiosk_id: str, sequence: int) -> uuid.UUID | None:
    """The id of the event applied under ``sequence``, if any."""
    cur = await conn.execute(
        "SELECT event_id FROM kiosk_events WHERE kiosk_id = %s AND sequence = %s",
        (kiosk_id, sequence),
    )
    row = await cur.fetchone()
    return None if row is None else uuid.UUID(str(row["event_id"]))


async def event_id_taken(conn: Conn, kiosk_id: str, event_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM kiosk_events WHERE kiosk_id = %s AND event_id = %s", (kiosk_id, event_id)
    )
    return await cur.fetchone() is not None


async def record(
    conn: Conn,
    kiosk_id: str,
    event: EventRecord,
    *,
    outcome: str,
    detail: str | None,
    received_at: datetime,
) -> None:
    """Records an event with what applying it did, and advances the kiosk's cursor over it."""
    await conn.execute(
        """
        INSERT INTO kiosk_events (kiosk_id, sequence, event_id, type, payload, created_at,
                                  received_at, outcome, detail)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            kiosk_id,
            event.sequence,
            event.event_id,
            event.type,
            json.dumps(event.payload, default=str),
            event.created_at,
            received_at,
            outcome,
            detail,
        ),
    )
    await advance(conn, kiosk_id, event.sequence, received_at)


async def advance(conn: Conn, kiosk_id: str, sequence: int, now: datetime) -> None:
    """Moves the kiosk's cursor to ``sequence`` (an event skipped, not recorded again)."""
    await conn.execute(
        "UPDATE kiosk_cursors SET through_sequence = %s, updated_at = %s WHERE kiosk_id = %s",
        (sequence, now, kiosk_id),
    )
