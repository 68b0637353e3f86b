"""A location as the API shows it: its doors free per size, and its kiosks' presence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloud import locations
from cloud.api.services import Services
from cloud.store.database import Conn
from cloud.sync import presence


async def location_view(
    conn: Conn, svc: Services, location_id: str, *, admin: bool
) -> dict[str, Any]:
    """The location row with ``kiosk_status``; for the admin also ``revision`` and ``kiosks``.

    Raises:
        LocationNotFound.
    """
    row: dict[str, Any] = dict(await locations.get_location(conn, location_id))
    kiosks = await presence.location_kiosks(
        conn,
        location_id,
        svc.clock.now(),
        timedelta(seconds=svc.settings.kiosk_stale_after_seconds),
    )
    row["kiosk_status"] = presence.summary_status(kiosks)
    if admin:
        cur = await conn.execute(
            "SELECT revision FROM locations WHERE location_id = %s", (location_id,)
        )
        found = await cur.fetchone()
        row["revision"] = None if found is None else found["revision"]
        row["kiosks"] = kiosks
    return row


async def open_alerts(conn: Conn, location_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The location's unresolved fleet alerts, newest first."""
    cur = await conn.execute(
        "SELECT alert_id, kiosk_id, kind, door_number, detail, raised_at FROM fleet_alerts"
        " WHERE location_id = %s AND resolved_at IS NULL ORDER BY raised_at DESC LIMIT %s",
        (location_id, limit),
    )
    return list(await cur.fetchall())
