"""What the operations console reads (`cloud.ops`): the fleet list, a location's door grid,
the parcels waiting for a courier, recent kiosk events, and the series behind its plots.

Read-only; every list is bounded, since a fleet has 100,000 locations.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.store.database import Conn
from cloud.store.kiosks import KioskPresence


@dataclass(frozen=True, slots=True)
class SizeOccupancy:
    total: int
    free: int


@dataclass(frozen=True, slots=True)
class FleetRow:
    """A location in the fleet list."""

    location_id: str
    name: str
    address: str
    active: bool
    occupancy: dict[str, SizeOccupancy]
    open_alerts: int
    kiosks: list[KioskPresence] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DoorCell:
    """A door in a location's grid, with the parcel in it and its open alerts."""

    door_number: int
    label: str
    size: str
    status: str
    status_changed_at: datetime
    maintenance_reason: str | None
    allocation_id: uuid.UUID | None
    package_id: str | None
    allocation_status: str | None
    kind: str | None
    pickup_expires_at: datetime | None
    alerts: list[str]


@dataclass(frozen=True, slots=True)
class ToCollect:
    """A parcel waiting for a courier: an expired delivery or a deposited return."""

    location_id: str
    door_number: int
    label: str
    allocation_id: uuid.UUID
    kind: str
    carrier_id: str
    package_id: str
    since: datetime


@dataclass(frozen=True, slots=True)
class KioskEventLine:
    kiosk_id: str
    sequence: int
    type: str
    outcome: str
    detail: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertLine:
    alert_id: int
    location_id: str
    kiosk_id: str | None
    kind: str
    door_number: int | None
    detail: dict[str, Any]
    raised_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


_SEARCH = (
    " WHERE (%(q)s::text IS NULL OR l.location_id ILIKE %(like)s OR l.name ILIKE %(like)s"
    " OR l.address ILIKE %(like)s)"
)


async def fleet(
    conn: Conn, *, query: str | None, limit: int, offset: int
) -> tuple[int, list[FleetRow]]:
    """(locations matching, a page of them): locations with open alerts first, then by id."""
    params = {"q": query, "like": f"%{_escape_like(query or '')}%", "limit": limit, "off": offset}
    cur = await conn.execute("SELECT count(*) AS n FROM locations l" + _SEARCH, params)
    row = await cur.fetchone()
    total = 0 if row is None else int(row["n"])
    cur = await conn.execute(
        "SELECT l.location_id, l.name, l.address, l.active,"
        " (SELECT count(*) FROM fleet_alerts a"
        "  WHERE a.location_id = l.location_id AND a.resolved_at IS NULL) AS open_alerts"
        " FROM locations l" + _SEARCH + " ORDER BY (SELECT count(*) > 0 FROM fleet_alerts a"
        "  WHERE a.location_id = l.location_id AND a.resolved_at IS NULL) DESC, l.location_id"
        " LIMIT %(limit)s OFFSET %(off)s",
        params,
    )
    rows = await cur.fetchall()
    ids = [r["location_id"] for r in rows]
    occupancy = await _occupancy(conn, ids)
    kiosks = await kiosks_of(conn, ids)
    return total, [
        FleetRow(
            location_id=r["location_id"],
            name=r["name"],
            address=r["address"],
            active=r["active"],
            occupancy=occupancy.get(r["location_id"], {}),
            open_alerts=int(r["open_alerts"]),
            kiosks=kiosks.get(r["location_id"], []),
        )
        for r in rows
    ]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _occupancy(conn: Conn, ids: list[str]) -> dict[str, dict[str, SizeOccupancy]]:
    cur = await conn.execute(
        "SELECT location_id, size, size_rank, count(*) AS total,"
        " count(*) FILTER (WHERE status = 'available') AS free FROM doors"
        " WHERE location_id = ANY(%s) GROUP BY location_id, size, size_rank ORDER BY size_rank",
        (ids,),
    )
    found: dict[str, dict[str, SizeOccupancy]] = defaultdict(dict)
    for r in await cur.fetchall():
        found[r["location_id"]][r["size"]] = SizeOccupancy(int(r["total"]), int(r["free"]))
    return found


async def kiosks_of(conn: Conn, ids: list[str]) -> dict[str, list[KioskPresence]]:
    """The stored presence of the kiosks of these locations."""
    cur = await conn.execute(
        "SELECT location_id, kiosk_id, status, epoch, firmware, last_revision, registered_at,"
        " birth_at, death_at, heartbeat_at, heartbeat FROM kiosks"
        " WHERE location_id = ANY(%s) ORDER BY kiosk_id",
        (ids,),
    )
    found: dict[str, list[KioskPresence]] = defaultdict(list)
    for r in await cur.fetchall():
        location_id = r.pop("location_id")
        found[location_id].append(KioskPresence(**r))
    return found


async def door_grid(conn: Conn, location_id: str) -> list[DoorCell]:
    cur = await conn.execute(
        "SELECT d.door_number, d.label, d.size, d.status, d.status_changed_at,"
        " d.maintenance_reason,"
        " a.allocation_id, a.package_id, a.status AS allocation_status, a.kind,"
        " a.pickup_expires_at,"
        " coalesce((SELECT array_agg(f.kind ORDER BY f.raised_at) FROM fleet_alerts f"
        "  WHERE f.location_id = d.location_id AND f.door_number = d.door_number"
        "  AND f.resolved_at IS NULL), '{}') AS alerts"
        " FROM doors d LEFT JOIN allocations a ON a.door_id = d.door_id"
        "  AND a.status IN ('reserved', 'deposited', 'expired')"
        " WHERE d.location_id = %s ORDER BY d.door_number",
        (location_id,),
    )
    return [DoorCell(**r) for r in await cur.fetchall()]


async def to_collect(conn: Conn, location_id: str | None, limit: int) -> list[ToCollect]:
    """Parcels waiting for a courier, oldest first (at one location, or the fleet's)."""
    cur = await conn.execute(
        "SELECT a.location_id, d.door_number, d.label, a.allocation_id, a.kind, a.carrier_id,"
        " a.package_id, coalesce(a.expired_at, a.deposited_at) AS since"
        " FROM allocations a JOIN doors d ON d.door_id = a.door_id"
        " WHERE ((a.kind = 'delivery' AND a.status = 'expired')"
        "  OR (a.kind = 'return' AND a.status = 'deposited'))"
        " AND (%(loc)s::text IS NULL OR a.location_id = %(loc)s)"
        " ORDER BY since, a.location_id, d.door_number LIMIT %(limit)s",
        {"loc": location_id, "limit": limit},
    )
    return [ToCollect(**r) for r in await cur.fetchall()]


async def kiosk_events(conn: Conn, location_id: str, limit: int) -> list[KioskEventLine]:
    """The location's kiosks' latest events as the cloud recorded them."""
    cur = await conn.execute(
        "SELECT e.kiosk_id, e.sequence, e.type, e.outcome, e.detail, e.created_at"
        " FROM kiosk_events e JOIN kiosks k USING (kiosk_id) WHERE k.location_id = %s"
        " ORDER BY e.received_at DESC, e.sequence DESC LIMIT %s",
        (location_id, limit),
    )
    return [KioskEventLine(**r) for r in await cur.fetchall()]


async def alerts(conn: Conn, location_id: str, limit: int) -> list[AlertLine]:
    """The location's alerts, open ones first, then the latest resolved."""
    cur = await conn.execute(
        "SELECT alert_id, location_id, kiosk_id, kind, door_number, detail, raised_at,"
        " resolved_at, resolved_by FROM fleet_alerts WHERE location_id = %s"
        " ORDER BY resolved_at IS NOT NULL, raised_at DESC LIMIT %s",
        (location_id, limit),
    )
    return [AlertLine(**r) for r in await cur.fetchall()]


async def resolve_alert(
    conn: Conn, alert_id: int, *, by: str, resolution: str, now: datetime
) -> AlertLine | None:
    """Marks an open alert resolved. None if there is no such open alert."""
    cur = await conn.execute(
        "UPDATE fleet_alerts SET resolved_at = %s, resolved_by = %s, resolution = %s"
        " WHERE alert_id = %s AND resolved_at IS NULL RETURNING alert_id, location_id, kiosk_id,"
        " kind, door_number, detail, raised_at, resolved_at, resolved_by",
        (now, by, resolution, alert_id),
    )
    row = await cur.fetchone()
    return None if row is None else AlertLine(**row)


# The plots' series.


async def allocations_per_hour(
    conn: Conn, location_id: str, since: datetime, until: datetime
) -> list[tuple[datetime, int]]:
    """Allocations made in each hour from ``since`` to ``until``, hours without any as 0."""
    cur = await conn.execute(
        "SELECT h.hour, count(a.allocation_id) AS n"
        " FROM generate_series(date_trunc('hour', %(since)s::timestamptz),"
        "  %(until)s::timestamptz, interval '1 hour') AS h(hour)"
        " LEFT JOIN allocations a ON a.location_id = %(loc)s"
        "  AND a.reserved_at >= h.hour AND a.reserved_at < h.hour + interval '1 hour'"
        " GROUP BY h.hour ORDER BY h.hour",
        {"loc": location_id, "since": since, "until": until},
    )
    return [(r["hour"], int(r["n"])) for r in await cur.fetchall()]


async def occupancy_by_hour(
    conn: Conn, location_id: str, since: datetime, until: datetime
) -> list[tuple[datetime, int]]:
    """Doors holding a parcel at each hour from ``since``, and at ``until`` itself."""
    cur = await conn.execute(
        "SELECT t.at, count(a.allocation_id) AS n"
        " FROM (SELECT generate_series(date_trunc('hour', %(since)s::timestamptz),"
        "  %(until)s::timestamptz, interval '1 hour') AS at"
        "  UNION SELECT %(until)s::timestamptz) AS t"
        " LEFT JOIN allocations a ON a.location_id = %(loc)s AND a.deposited_at <= t.at"
        "  AND coalesce(a.picked_up_at, a.collected_at, a.cancelled_at, 'infinity') > t.at"
        " GROUP BY t.at ORDER BY t.at",
        {"loc": location_id, "since": since, "until": until},
    )
    return [(r["at"], int(r["n"])) for r in await cur.fetchall()]


async def dwell_hours(conn: Conn, location_id: str, since: datetime, limit: int) -> list[float]:
    """Hours from deposit to pickup of the parcels picked up since ``since``."""
    cur = await conn.execute(
        "SELECT extract(epoch FROM picked_up_at - deposited_at) / 3600 AS hours"
        " FROM allocations WHERE location_id = %s AND picked_up_at >= %s"
        " AND deposited_at IS NOT NULL ORDER BY picked_up_at DESC LIMIT %s",
        (location_id, since, limit),
    )
    return [float(r["hours"]) for r in await cur.fetchall()]
