"""Fleet alert rows: what an operator should look at (a door conflict, a tampered door...)."""

from __future__ import annotations

from datetime import datetime

from cloud.store.database import Conn


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
