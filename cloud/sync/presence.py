"""Presence: births, deaths and heartbeats of the kiosks, and how the API shows them.

Epochs make presence order-proof (``docs/protocol.md``): each connection of a kiosk has a
higher epoch than the one before.

- A ``birth`` of a newer epoch marks the kiosk online; one of the current epoch is a duplicate
  and changes nothing once that connection has died.
- A ``death`` (the MQTT will) marks the kiosk offline only when its epoch is the latest known:
  a late will of an older connection does not mark a live kiosk dead. A death of a newer epoch
  than any birth seen (the birth was lost) still marks it offline.
- A ``heartbeat`` keeps the last figures; one of a newer epoch (its birth lost or late) also
  marks the kiosk online at that epoch; one of an older epoch, or of a connection that has died,
  is ignored.

Shown status: ``never_seen`` (no birth yet), ``offline``, ``online``, or ``stale`` (online but
silent for longer than the configured interval).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from cloud.store.database import Conn, Pool
from shared.protocol import BirthBody, DeathBody, HeartbeatBody


async def record_birth(pool: Pool, body: BirthBody, now: datetime) -> bool:
    """Marks the kiosk online at the birth's epoch. Returns whether anything changed."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE kiosks SET status = 'online', epoch = %(epoch)s, firmware = %(firmware)s,
                   last_revision = %(revision)s, birth_at = %(now)s
            WHERE kiosk_id = %(kiosk)s
              AND (epoch IS NULL OR epoch < %(epoch)s
                   OR (epoch = %(epoch)s AND status = 'online'))
            """,
            {
                "kiosk": body.kiosk_id,
                "epoch": body.epoch,
                "firmware": body.firmware,
                "revision": body.last_revision,
                "now": now,
            },
        )
        return cur.rowcount == 1


async def record_death(pool: Pool, body: DeathBody, now: datetime) -> bool:
    """Marks the kiosk offline if the death is of its latest connection."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE kiosks SET status = 'offline', epoch = %(epoch)s, death_at = %(now)s
            WHERE kiosk_id = %(kiosk)s
              AND (epoch IS NULL OR epoch < %(epoch)s
                   OR (epoch = %(epoch)s AND status <> 'offline'))
            """,
            {"kiosk": body.kiosk_id, "epoch": body.epoch, "now": now},
        )
        return cur.rowcount == 1


async def record_heartbeat(pool: Pool, body: HeartbeatBody, now: datetime) -> int | None:
    """Keeps the heartbeat's figures, unless it is of an older or a dead connection.

    Returns:
        The location's change-log revision when the heartbeat was kept (read in the same
        statement, so checking whether the kiosk is behind costs no extra round trip), or None
        when it was ignored.
    """
    figures = body.model_dump(mode="json", exclude={"kiosk_id", "epoch"})
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            UPDATE kiosks SET status = 'online', epoch = %(epoch)s, heartbeat_at = %(now)s,
                   heartbeat = %(figures)s, last_revision = %(revision)s
            WHERE kiosk_id = %(kiosk)s
              AND (epoch IS NULL OR epoch < %(epoch)s
                   OR (epoch = %(epoch)s AND status = 'online'))
            RETURNING (SELECT l.revision FROM locations l WHERE l.location_id = kiosks.location_id)
                AS location_revision
            """,
            {
                "kiosk": body.kiosk_id,
                "epoch": body.epoch,
                "now": now,
                "figures": json.dumps(figures),
                "revision": body.last_revision,
            },
        )
        row = await cur.fetchone()
        return None if row is None else int(row["location_revision"])


def shown_status(row: dict[str, Any], now: datetime, stale_after: timedelta) -> str:
    """``online``, ``stale``, ``offline`` or ``never_seen``."""
    status: str = row["status"]
    if status != "online":
        return status
    last_heard = max(t for t in (row["heartbeat_at"], row["birth_at"]) if t is not None)
    return "stale" if now - last_heard > stale_after else "online"


async def location_kiosks(
    conn: Conn, location_id: str, now: datetime, stale_after: timedelta
) -> list[dict[str, Any]]:
    """The location's kiosks with their presence, as the admin API shows them."""
    cur = await conn.execute(
        "SELECT kiosk_id, status, epoch, firmware, last_revision, registered_at, birth_at,"
        " death_at, heartbeat_at, heartbeat FROM kiosks WHERE location_id = %s ORDER BY kiosk_id",
        (location_id,),
    )
    rows = await cur.fetchall()
    for row in rows:
        row["status"] = shown_status(row, now, stale_after)
    return rows


_RANK = {"online": 0, "stale": 1, "offline": 2, "never_seen": 3}


def summary_status(kiosks: list[dict[str, Any]]) -> str:
    """The location's status: that of its best kiosk (``never_seen`` without any)."""
    return min((k["status"] for k in kiosks), key=_RANK.__getitem__, default="never_seen")
