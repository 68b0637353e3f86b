"""Fleet alert rows: what an operator should look at (a door conflict, tampering, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.store.database import Conn


@dataclass(frozen=True, slots=True)
class Alert:
    """An unresolved row of ``fleet_alerts``, as the admin API shows it."""

    alert_id: int
    kiosk_id: str | None
    kind: str
    door_number: int | None
    detail: dict[str, Any]
    raised_at: datetime


async def open_alerts(conn: Conn, location_id: str, limit: int) -> list[Alert]:
    """The location's unresolved alerts, newest first, at most ``limit`` of them."""
    cur = await conn.execute(
        "SELECT alert_id, kiosk_id, kind, door_number, detail, raised_at FROM fleet_alerts"
        " WHERE location_id = %s AND resolved_at IS NULL ORDER BY raised_at DESC LIMIT %s",
        (location_id, limit),
    )
    return [Alert(**row) for row in await cur.fetchall()]


async def raise_alert(
    conn: Conn,
    *,
    location_id: str,
    kiosk_id: str,
    kind: str,
    door_number: int | None,
    detail: str,
    now: datetime,
) -> None:
    """Opens an alert; ``detail`` is a JSON object (the event's payload and what was found)."""
    await conn.execute(
        "INSERT INTO fleet_alerts (location_id, kiosk_id, kind, door_number, detail, raised_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (location_id, kiosk_id, kind, door_number, detail, now),
    )


async def has_open_alert(
    conn: Conn, *, kiosk_id: str, kind: str, detail_matches: dict[str, Any]
) -> bool:
    """Whether the kiosk has an unresolved alert of ``kind`` whose detail contains
    ``detail_matches``: a kiosk resending the same message must not raise one alert per try."""
    cur = await conn.execute(
        "SELECT 1 FROM fleet_alerts WHERE kiosk_id = %s AND kind = %s AND resolved_at IS NULL"
        " AND detail @> %s LIMIT 1",
        (kiosk_id, kind, json.dumps(detail_matches)),
    )
    return await cur.fetchone() is not None
