"""Fleet alerts: what an operator should look at (tampering, doors left open, ...)."""

from __future__ import annotations

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
