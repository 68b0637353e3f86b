"""Kiosk store incarnations: which store of a kiosk speaks now, and where its sequence starts.

See ``0004_store_incarnation.sql``: a kiosk's events are numbered per store; the cloud counts
them per kiosk, the current incarnation's sequence ``n`` being the cursor's ``offset + n``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cloud.store.database import Conn


class Standing(StrEnum):
    CURRENT = "current"
    ADOPTED = "adopted"  # the first incarnation seen for a kiosk: its store from the start
    NEW = "new"  # a store that replaced the current one
    RETIRED = "retired"  # a store replaced earlier, speaking again


@dataclass(frozen=True, slots=True)
class Incarnation:
    """Where an events message's incarnation stands, and its sequence offset."""

    standing: Standing
    offset: int
    previous: uuid.UUID | None = None


async def resolve(
    conn: Conn, kiosk_id: str, incarnation: uuid.UUID | None, cursor: int, now: datetime
) -> Incarnation:
    """The incarnation of an events message, under the kiosk's locked cursor row.

    A first incarnation is adopted at offset 0 (the store the kiosk had before incarnations
    existed continues its numbering); an unknown one replaces the current one at the cursor
    (its sequence 1 comes after everything applied so far); a known, non-current one is
    retired: nothing of it may be applied any more.
    """
    cur = await conn.execute(
        "SELECT c.incarnation, i.sequence_offset FROM kiosk_cursors c"
        " LEFT JOIN kiosk_incarnations i ON i.kiosk_id = c.kiosk_id"
        " AND i.incarnation = c.incarnation WHERE c.kiosk_id = %s",
        (kiosk_id,),
    )
    row = await cur.fetchone()
    assert row is not None, "resolve runs under the kiosk's cursor row lock"
    current, offset = row["incarnation"], int(row["sequence_offset"] or 0)
    if incarnation is None or incarnation == current:
        return Incarnation(Standing.CURRENT, offset)
    known = await conn.execute(
        "SELECT 1 FROM kiosk_incarnations WHERE kiosk_id = %s AND incarnation = %s",
        (kiosk_id, incarnation),
    )
    if await known.fetchone() is not None:
        return Incarnation(Standing.RETIRED, 0, current)
    standing, offset = (Standing.ADOPTED, 0) if current is None else (Standing.NEW, cursor)
    await conn.execute(
        "INSERT INTO kiosk_incarnations (kiosk_id, incarnation, sequence_offset, first_seen_at)"
        " VALUES (%s, %s, %s, %s)",
        (kiosk_id, incarnation, offset, now),
    )
    await conn.execute(
        "UPDATE kiosk_cursors SET incarnation = %s WHERE kiosk_id = %s", (incarnation, kiosk_id)
    )
    return Incarnation(standing, offset, current)
