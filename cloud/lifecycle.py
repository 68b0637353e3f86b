"""Time-driven moves of allocations: reservation timeout and pickup expiry.

Each job handles a bounded batch per transaction and takes its rows with
``FOR UPDATE SKIP LOCKED``, so several service instances can run the jobs at once
without stepping on each other or on a customer's pickup in progress.
`LifecycleRunner` calls them on a timer inside the service.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud import changelog, notifications
from cloud.allocation import finish_allocations, notification_payload, set_door_status
from cloud.store.database import Pool
from shared.clock import Clock

log = logging.getLogger(__name__)

BATCH = 500


async def expire_reservations(pool: Pool, now: datetime, batch: int = BATCH) -> int:
    """Cancels reservations whose hold ran out (the parcel never came); frees their doors.

    Returns:
        How many reservations were cancelled.
    """
    total = 0
    while True:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                """
                SELECT allocation_id, door_id, pickup_code_id FROM allocations
                WHERE status = 'reserved' AND reservation_expires_at <= %s
                ORDER BY reservation_expires_at
                LIMIT %s
                FOR UPDATE SKIP LOCKED
                """,
                (now, batch),
            )
            rows = await cur.fetchall()
            if rows:
                await finish_allocations(
                    conn, rows, "cancelled", now, cancel_reason="reservation_timeout"
                )
                await changelog.record(conn, now, allocations=[r["allocation_id"] for r in rows])
        total += len(rows)
        if len(rows) < batch:
            return total


async def expire_pickups(pool: Pool, now: datetime, batch: int = BATCH) -> int:
    """Expires parcels not picked up in their window; their doors await staff collection.

    Returns:
        How many parcels expired.
    """
    total = 0
    while True:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                """
                SELECT a.*, l.address, l.timezone, d.door_number, c.code
                FROM allocations a
                JOIN locations l ON l.location_id = a.location_id
                JOIN doors d ON d.door_id = a.door_id
                JOIN pickup_codes c ON c.pickup_code_id = a.pickup_code_id
                WHERE a.status = 'deposited' AND a.kind = 'delivery'
                  AND a.pickup_expires_at <= %s
                ORDER BY a.pickup_expires_at
                LIMIT %s
                FOR UPDATE OF a SKIP LOCKED
                """,
                (now, batch),
            )
            rows = await cur.fetchall()
            if rows:
                ids = [r["allocation_id"] for r in rows]
                await conn.execute(
                    "UPDATE allocations SET status = 'expired', expired_at = %s, updated_at = %s"
                    " WHERE allocation_id = ANY(%s)",
                    (now, now, ids),
                )
                await set_door_status(
                    conn, [r["door_id"] for r in rows], "awaiting_collection", now
                )
                await notifications.cancel_pending(conn, ids, notifications.WAITING_KINDS)
                for r in rows:
                    await notifications.enqueue(
                        conn,
                        allocation_id=r["allocation_id"],
                        carrier_id=r["carrier_id"],
                        customer_id=r["customer_id"],
                        kind="expired",
                        payload=notification_payload(r, r["code"]),
                        due_at=now,
                        now=now,
                    )
                # The code opens nothing any more unless another parcel still waits on it.
                await conn.execute(
                    """
                    UPDATE pickup_codes c SET retired_at = %s
                    WHERE c.pickup_code_id = ANY(%s) AND c.used_at IS NULL
                      AND c.retired_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM allocations a
                                      WHERE a.pickup_code_id = c.pickup_code_id
                                        AND a.status IN ('reserved', 'deposited'))
                    """,
                    (now, list({r["pickup_code_id"] for r in rows})),
                )
                await changelog.record(conn, now, allocations=ids)
        total += len(rows)
        if len(rows) < batch:
            return total


@dataclass
class LifecycleReport:
    reservations_cancelled: int
    parcels_expired: int
    changes_compacted: int = 0


async def run_once(
    pool: Pool, now: datetime, change_retention: timedelta | None = None
) -> LifecycleReport:
    """One round of the jobs; with ``change_retention``, also compacts the change log."""
    return LifecycleReport(
        reservations_cancelled=await expire_reservations(pool, now),
        parcels_expired=await expire_pickups(pool, now),
        changes_compacted=0
        if change_retention is None
        else await changelog.compact(pool, now - change_retention),
    )


class LifecycleRunner:
    """Runs the lifecycle jobs every ``interval`` seconds until cancelled."""

    def __init__(
        self,
        pool: Pool,
        clock: Clock,
        interval: float,
        change_retention: timedelta | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._interval = interval
        self._change_retention = change_retention

    async def run(self) -> None:
        while True:
            try:
                report = await run_once(self._pool, self._clock.now(), self._change_retention)
                if report.reservations_cancelled or report.parcels_expired:
                    log.info(
                        "lifecycle: %d reservations timed out, %d parcels expired",
                        report.reservations_cancelled,
                        report.parcels_expired,
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failed round (database restarting, say) must not end the loop:
                # the next round picks up whatever this one left.
                log.exception("lifecycle round failed; retrying in %.0f s", self._interval)
            await asyncio.sleep(self._interval)
