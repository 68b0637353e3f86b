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

from cloud import code_secret_rotation as code_secret_rotation_jobs
from cloud.parcels import finish
from cloud.store import allocations, changelog
from cloud.store.database import Pool
from cloud.store.transaction import unit
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
        async with pool.connection() as conn, unit(conn, now) as work:
            due = await allocations.lock_due_reservations(conn, now, batch)
            if due:
                await finish.cancel_timed_out(work, due)
        total += len(due)
        if len(due) < batch:
            return total


async def expire_pickups(pool: Pool, now: datetime, batch: int = BATCH) -> int:
    """Expires parcels not picked up in their window; their doors await staff collection.

    Returns:
        How many parcels expired.
    """
    total = 0
    while True:
        async with pool.connection() as conn, unit(conn, now) as work:
            due = await allocations.lock_due_pickups(conn, now, batch)
            if due:
                await finish.expire(work, due)
        total += len(due)
        if len(due) < batch:
            return total


@dataclass
class LifecycleReport:
    reservations_cancelled: int
    parcels_expired: int
    changes_compacted: int = 0
    code_secrets_requested: int = 0
    code_secrets_retired: int = 0


async def run_once(
    pool: Pool,
    now: datetime,
    change_retention: timedelta | None = None,
    code_secret_rotation: timedelta | None = None,
) -> LifecycleReport:
    """One round of the jobs; with ``change_retention``, also compacts the change log; with
    ``code_secret_rotation`` (issue 9), also rotates the kiosks' code secrets that are due and
    retires the generations no live code needs."""
    report = LifecycleReport(
        reservations_cancelled=await expire_reservations(pool, now),
        parcels_expired=await expire_pickups(pool, now),
        changes_compacted=0
        if change_retention is None
        else await changelog.compact(pool, now - change_retention),
    )
    if code_secret_rotation is not None:
        requested = await code_secret_rotation_jobs.rotate_due(pool, now, code_secret_rotation)
        report.code_secrets_requested = len(requested)
        report.code_secrets_retired = len(
            await code_secret_rotation_jobs.retire_unneeded(pool, now)
        )
    return report


class LifecycleRunner:
    """Runs the lifecycle jobs every ``interval`` seconds until cancelled."""

    def __init__(
        self,
        pool: Pool,
        clock: Clock,
        interval: float,
        change_retention: timedelta | None = None,
        code_secret_rotation: timedelta | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._interval = interval
        self._change_retention = change_retention
        self._code_secret_rotation = code_secret_rotation

    async def run(self) -> None:
        while True:
            try:
                report = await run_once(
                    self._pool,
                    self._clock.now(),
                    self._change_retention,
                    self._code_secret_rotation,
                )
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
