"""The alerts the cloud raises and ends by itself from what it knows of each kiosk (presence),
and the end of the alerts that a kiosk's later event closes.

Each statement is one set-based ``INSERT ... SELECT`` or ``UPDATE ... FROM`` over the kiosks,
so a sweep over 100,000 kiosks is a handful of statements, and a second sweep changes nothing
(an alert is raised only when none of its kind is open for that kiosk).
"""

from __future__ import annotations

from datetime import datetime
from typing import LiteralString

from cloud.store.database import Conn

# The shown presence's "offline" (cloud.sync.presence.PresenceRule.shown_status) in SQL, on
# ``kiosks k`` with the parameter ``%(offline_since)s`` = now - offline_after.
CONFIRMED_OFFLINE: LiteralString = (
    "((k.status = 'offline' AND coalesce(k.death_at, greatest(k.heartbeat_at, k.birth_at))"
    " <= %(offline_since)s)"
    " OR (k.status = 'online' AND greatest(k.heartbeat_at, k.birth_at) <= %(offline_since)s))"
)
KIOSK_OFFLINE = "kiosk_offline"


async def raise_kiosks_offline(conn: Conn, *, now: datetime, offline_since: datetime) -> int:
    cur = await conn.execute(
        "INSERT INTO fleet_alerts (location_id, kiosk_id, kind, detail, raised_at)"
        " SELECT k.location_id, k.kiosk_id, %(kind)s,"
        "  jsonb_build_object('last_heard', greatest(k.heartbeat_at, k.birth_at),"
        "   'death_at', k.death_at), %(now)s"
        " FROM kiosks k WHERE " + CONFIRMED_OFFLINE + " AND NOT EXISTS (SELECT 1 FROM"
        "  fleet_alerts a WHERE a.kiosk_id = k.kiosk_id AND a.kind = %(kind)s"
        "  AND a.resolved_at IS NULL)",
        {"kind": KIOSK_OFFLINE, "now": now, "offline_since": offline_since},
    )
    return cur.rowcount


async def end_kiosks_offline(conn: Conn, *, now: datetime, offline_since: datetime) -> int:
    """Ends the offline alert of each kiosk heard from again."""
    cur = await conn.execute(
        "UPDATE fleet_alerts a SET resolved_at = %(now)s, resolution = 'kiosk back online'"
        " FROM kiosks k WHERE a.kiosk_id = k.kiosk_id AND a.kind = %(kind)s"
        " AND a.resolved_at IS NULL AND k.status = 'online'"
        " AND greatest(k.heartbeat_at, k.birth_at) > a.raised_at"
        " AND NOT " + CONFIRMED_OFFLINE,
        {"kind": KIOSK_OFFLINE, "now": now, "offline_since": offline_since},
    )
    return cur.rowcount


async def end_keypad_lockouts(conn: Conn, *, now: datetime) -> int:
    """A keypad lockout ends when the kiosk said it would (its event's ``locked_until``)."""
    cur = await conn.execute(
        "UPDATE fleet_alerts SET resolved_at = (detail->>'locked_until')::timestamptz,"
        " resolution = 'lockout over'"
        " WHERE kind = 'keypad_locked' AND resolved_at IS NULL"
        " AND (detail->>'locked_until')::timestamptz <= %(now)s",
        {"now": now},
    )
    return cur.rowcount


async def end_door_alerts(
    conn: Conn,
    *,
    location_id: str,
    door_number: int,
    kinds: tuple[str, ...],
    now: datetime,
    resolution: str,
) -> int:
    """Ends the open alerts of these kinds on a door (a door seen shut ends "left open")."""
    cur = await conn.execute(
        "UPDATE fleet_alerts SET resolved_at = %s, resolution = %s"
        " WHERE location_id = %s AND door_number = %s AND kind = ANY(%s)"
        " AND resolved_at IS NULL",
        (now, resolution, location_id, door_number, list(kinds)),
    )
    return cur.rowcount


async def end_kiosk_alerts(
    conn: Conn, *, kiosk_id: str, kinds: tuple[str, ...], now: datetime, resolution: str
) -> int:
    """Ends a kiosk's open alerts of these kinds (its boards answering ends "unavailable")."""
    cur = await conn.execute(
        "UPDATE fleet_alerts SET resolved_at = %s, resolution = %s"
        " WHERE kiosk_id = %s AND kind = ANY(%s) AND resolved_at IS NULL",
        (now, resolution, kiosk_id, list(kinds)),
    )
    return cur.rowcount
