"""Rows of ``pickup_guesses``: pickup attempts counted per carrier and per location."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.store.database import Conn


@dataclass(frozen=True, slots=True)
class Count:
    """Attempts counted in the current window of one scope (``carrier`` or ``location``)."""

    scope: str
    key: str
    attempts: int
    window_start: datetime


# Counts one attempt in each scope's current window, starting a new window where the old one
# ended. One statement, so concurrent attempts are counted exactly (the row lock of the upsert).
_COUNT_SQL = """
INSERT INTO pickup_guesses AS g (scope, key, window_start, attempts)
SELECT 'carrier', %(carrier)s, %(now)s, 1
UNION ALL
-- Only a location that exists is counted: each unknown id tried would leave a row of its own.
-- Guesses at unknown ids are still counted per carrier.
SELECT 'location', %(location)s, %(now)s, 1
WHERE EXISTS (SELECT 1 FROM locations WHERE location_id = %(location)s)
ON CONFLICT (scope, key) DO UPDATE SET
    attempts = CASE WHEN g.window_start <= %(now)s - %(window)s THEN 1 ELSE g.attempts + 1 END,
    window_start = CASE WHEN g.window_start <= %(now)s - %(window)s THEN %(now)s
                        ELSE g.window_start END
RETURNING scope, key, attempts, window_start
"""


async def count_attempt(
    conn: Conn, *, carrier_key: str, location_id: str, now: datetime, window: timedelta
) -> list[Count]:
    """Counts an attempt for the carrier and for the location (autocommit: it stands alone)."""
    cur = await conn.execute(
        _COUNT_SQL, {"carrier": carrier_key, "location": location_id, "now": now, "window": window}
    )
    return [Count(**row) for row in await cur.fetchall()]


async def forgive_attempt(
    conn: Conn, *, carrier_key: str, location_id: str, window_start: dict[str, datetime]
) -> None:
    """Takes back an attempt that succeeded, in the windows it was counted in."""
    await conn.execute(
        "UPDATE pickup_guesses SET attempts = attempts - 1"
        " WHERE attempts > 0 AND ((scope = 'carrier' AND key = %s AND window_start = %s)"
        " OR (scope = 'location' AND key = %s AND window_start = %s))",
        (
            carrier_key,
            window_start["carrier"],
            location_id,
            window_start.get("location"),  # absent: the location was not counted
        ),
    )


async def raise_guessing_alert(conn: Conn, *, location_id: str, detail: str, now: datetime) -> None:
    """An operator alert at the location (when it exists: alerts belong to a location)."""
    await conn.execute(
        "INSERT INTO fleet_alerts (location_id, kind, detail, raised_at)"
        " SELECT %s, 'pickup_guessing', %s, %s WHERE EXISTS"
        " (SELECT 1 FROM locations WHERE location_id = %s)",
        (location_id, detail, now, location_id),
    )
