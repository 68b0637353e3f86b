"""The fleet's state in figures, read at each metrics scrape (`cloud.metrics`).

Each query is one aggregate over an indexed or small table, so a scrape costs a few
milliseconds however many parcels there are. The per-location change-log lag lists only the
locations that are behind: at 100,000 locations a series per location would be 100,000 series
on every scrape for a figure that is 0 almost everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, LiteralString

from psycopg.rows import DictRow

from cloud.store.database import Conn
from cloud.store.fleet_health import CONFIRMED_OFFLINE

if TYPE_CHECKING:
    from cloud.sync.presence import PresenceRule


@dataclass(frozen=True, slots=True)
class FleetStats:
    """Counts by label values, as `cloud.metrics` exposes them."""

    doors: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, size) -> doors
    kiosks: dict[str, int] = field(default_factory=dict)  # shown presence -> kiosks
    notifications: dict[str, int] = field(default_factory=dict)  # outbox status -> rows
    awaiting_collection: dict[str, int] = field(default_factory=dict)  # kind -> parcels
    lagging_locations: dict[str, int] = field(default_factory=dict)  # location -> revisions
    # (alert kind, location) -> open alerts
    open_alerts: dict[tuple[str, str], int] = field(default_factory=dict)


async def read(conn: Conn, *, now: datetime, presence: PresenceRule) -> FleetStats:
    """The fleet's figures now, the kiosks' presence shown by ``presence``."""
    doors = {
        (row["status"], row["size"]): row["n"]
        for row in await _rows(
            conn, "SELECT status, size, count(*) AS n FROM doors GROUP BY status, size"
        )
    }
    # The shown presence (cloud.sync.presence.PresenceRule) computed in SQL, so that a scrape
    # reads one row per status rather than one per kiosk.
    kiosks = {
        row["shown"]: row["n"]
        for row in await _rows(
            conn,
            "SELECT CASE WHEN k.status = 'never_seen' THEN 'never_seen'"
            " WHEN " + CONFIRMED_OFFLINE + " THEN 'offline'"
            " WHEN k.status = 'offline' THEN 'stale'"
            " WHEN greatest(k.heartbeat_at, k.birth_at) < %(stale_since)s THEN 'stale'"
            " ELSE 'online' END AS shown, count(*) AS n FROM kiosks k GROUP BY shown",
            {
                "stale_since": now - presence.stale_after,
                "offline_since": now - presence.offline_after,
            },
        )
    }
    notifications = {
        row["status"]: row["n"]
        for row in await _rows(
            conn,
            # Only the states an operator acts on: sent rows grow without bound.
            "SELECT status, count(*) AS n FROM notifications"
            " WHERE status IN ('pending', 'failed') GROUP BY status",
        )
    }
    awaiting = {
        row["kind"]: row["n"]
        for row in await _rows(
            conn,
            # An expired delivery waits for the courier; so does a deposited return.
            "SELECT kind, count(*) AS n FROM allocations"
            " WHERE (kind = 'delivery' AND status = 'expired')"
            " OR (kind = 'return' AND status = 'deposited') GROUP BY kind",
        )
    }
    lagging = {
        row["location_id"]: row["lag"]
        for row in await _rows(
            conn,
            # A location is as far behind as its least caught-up kiosk that has reported.
            "SELECT l.location_id, l.revision - min(k.last_revision) AS lag"
            " FROM locations l JOIN kiosks k USING (location_id)"
            " WHERE k.last_revision IS NOT NULL GROUP BY l.location_id, l.revision"
            " HAVING l.revision > min(k.last_revision)",
        )
    }
    alerts = {
        (row["kind"], row["location_id"]): row["n"]
        for row in await _rows(
            conn,
            # By location too, so that an alerting rule names where to go; only open alerts
            # are listed, so the series are as few as the problems.
            "SELECT kind, location_id, count(*) AS n FROM fleet_alerts"
            " WHERE resolved_at IS NULL GROUP BY kind, location_id",
        )
    }
    return FleetStats(doors, kiosks, notifications, awaiting, lagging, alerts)


async def _rows(
    conn: Conn, sql: LiteralString, params: dict[str, object] | None = None
) -> list[DictRow]:
    cur = await conn.execute(sql, params)
    return await cur.fetchall()
