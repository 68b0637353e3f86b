"""A location as the API shows it: its doors free per size, and its kiosks' presence.

The routes validate their response models from mappings, so the store's records become dicts
here, at the edge of the API.
"""

from __future__ import annotations

from typing import Any

from cloud import locations
from cloud.api.services import Services
from cloud.store import alerts, publications
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
        conn, location_id, svc.clock.now(), presence.PresenceRule.of(svc.settings)
    )
    row["kiosk_status"] = presence.summary_status(kiosks)
    if admin:
        row["revision"] = await publications.location_revision(conn, location_id)
        row["kiosks"] = kiosks
    return row


async def open_alerts(conn: Conn, location_id: str, limit: int = 100) -> list[alerts.Alert]:
    """The location's unresolved fleet alerts, newest first."""
    return await alerts.open_alerts(conn, location_id, limit)
