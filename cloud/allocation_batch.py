"""Allocating doors for many concurrent requests in one transaction.

``reserve`` (cloud.allocation) takes ten round trips to PostgreSQL and one commit
per parcel. Under load the service spends most of its time on those round trips
and the database on those commits. Here each allocation is a single SQL statement
(location check, door claim, pickup code, allocation insert and the read-back, as
data-modifying CTEs), and the requests that arrive while earlier ones are in
flight are sent together, pipelined, in one transaction with one commit.

The invariants are the ones ``reserve`` keeps, by the same means: the door is
taken with ``FOR UPDATE SKIP LOCKED`` and its status changes in the transaction
that inserts the allocation; the unique indexes on doors, codes and packages stay
the last word. Statements later in a batch see the changes of earlier ones (one
transaction), so two parcels for one location get two doors and two parcels for
one customer share one code.

Anything unusual is handed to ``reserve``, one request at a time, after the batch:
a retried package id (replay or conflict), and every request of a batch in which
a statement failed or lost a race (a drawn code already taken, a concurrent insert
of the same package). In the latter case the batch is rolled back first, so it
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow

from cloud import allocation, changelog, errors
from cloud.allocation import AllocationRequest
from cloud.store.database import Conn, Pool
from shared.codes import generate_code
from shared.protocol import AllocationState

log = logging.getLogger(__name__)

# One allocation in one statement. Parameters: see _params. The CTEs that modify
# data run once each, whether or not the final SELECT reads them, so each one is
# guarded by what it depends on: no code is issued unless a door was found, and no
# door is claimed unless the code was obtained.
_ALLOCATE_SQL = """
WITH loc AS MATERIALIZED (
    SELECT location_id, name, address, timezone, active
    FROM locations WHERE location_id = %(loc)s
),
dup AS MATERIALIZED (
    SELECT 1 FROM allocations WHERE carrier_id = %(carrier)s AND package_id = %(package)s
),
free AS MATERIALIZED (
    SELECT door_id FROM doors
    WHERE location_id = %(loc)s AND status = 'available' AND size_rank >= %(rank)s
      AND EXISTS (SELECT 1 FROM loc WHERE active) AND NOT EXISTS (SELECT 1 FROM dup)
      AND (%(a)s::real IS NULL OR (
          least(width_in, height_in, depth_in) >= %(a)s
          AND width_in + height_in + depth_in
              - least(width_in, height_in, depth_in)
              - greatest(width_in, height_in, depth_in) >= %(b)s
          AND greatest(width_in, height_in, depth_in) >= %(c)s))
    ORDER BY size_rank, door_number
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),
old_code AS MATERIALIZED (
    SELECT pickup_code_id, code FROM pickup_codes
    WHERE location_id = %(loc)s AND carrier_id = %(carrier)s AND customer_id = %(customer)s
      AND kind = 'pickup' AND used_at IS NULL AND retired_at IS NULL
      AND EXISTS (SELECT 1 FROM free)
    FOR UPDATE
),
new_code AS (
    INSERT INTO pickup_codes (location_id, carrier_id, customer_id, kind, code, created_at)
    SELECT %(loc)s, %(carrier)s, %(customer)s, 'pickup', %(code)s, %(now)s
    WHERE EXISTS (SELECT 1 FROM free) AND NOT EXISTS (SELECT 1 FROM old_code)
    ON CONFLICT DO NOTHING
    RETURNING pickup_code_id, code
),
code AS MATERIALIZED (
    SELECT pickup_code_id, code FROM old_code
    UNION ALL
    SELECT pickup_code_id, code FROM new_code
),
claimed AS (
    UPDATE doors d SET status = 'reserved', status_changed_at = %(now)s
    FROM free
    WHERE d.door_id = free.door_id AND EXISTS (SELECT 1 FROM code)
    RETURNING d.door_id, d.door_number, d.size
),
ins AS (
    INSERT INTO allocations (
        allocation_id, carrier_id, location_id, door_id, kind, package_id, order_id,
        customer_id, size, status, pickup_code_id, request_fingerprint,
        reserved_at, reservation_expires_at, updated_at)
    SELECT %(id)s, %(carrier)s, %(loc)s, claimed.door_id, 'delivery', %(package)s, %(order)s,
           %(customer)s, %(size)s, 'reserved', code.pickup_code_id, %(fingerprint)s,
           %(now)s, %(expires)s, %(now)s
    FROM claimed CROSS JOIN code
    ON CONFLICT (carrier_id, package_id) DO NOTHING
    RETURNING *
)
SELECT EXISTS (SELECT 1 FROM loc) AS location_found,
       coalesce((SELECT active FROM loc), false) AS location_active,
       EXISTS (SELECT 1 FROM dup) AS duplicate,
       EXISTS (SELECT 1 FROM free) AS door_found,
       ins.allocation_id, ins.carrier_id, ins.location_id, ins.kind, ins.package_id,
       ins.order_id, ins.customer_id, ins.size, ins.status, ins.reserved_at,
       ins.reservation_expires_at, ins.deposited_at, ins.driver_id, ins.pickup_expires_at,
       ins.picked_up_at, ins.expired_at, ins.collected_at, ins.cancelled_at, ins.cancel_reason,
       ins.request_fingerprint,
       claimed.door_id, claimed.door_number, claimed.size AS door_size,
       loc.name AS location_name, loc.address, loc.timezone,
       code.code AS pickup_code,
       CASE WHEN ins.allocation_id IS NOT NULL THEN {secret} END AS code_secret
FROM (SELECT 1) AS one
LEFT JOIN ins ON true
LEFT JOIN claimed ON true
LEFT JOIN code ON true
LEFT JOIN loc ON true
""".replace("{secret}", changelog.code_secret_sql("%(loc)s"))

# What the statement reports besides the columns of allocation.ALLOCATION_VIEW (the code
# secret is for the change log's code hash only, never for the answer).
_FLAGS = frozenset({"location_found", "location_active", "duplicate", "door_found", "code_secret"})


@dataclass(slots=True)
class Job:
    """One allocation request and where its answer goes."""

    carrier_id: str
    request: AllocationRequest
    now: datetime
    hold: timedelta
    result: tuple[DictRow, bool] | BaseException | None = None


class _Redo(Exception):
    """A statement of the batch lost a race: roll the batch back, redo it one by one."""


def _params(job: Job) -> dict[str, Any]:
    r = job.request
    a = b = c = None
    if r.dimensions is not None:
        a, b, c = r.dimensions.sorted_sides()
    return {
        "id": uuid.uuid4(),
        "loc": r.location_id,
        "carrier": job.carrier_id,
        "package": r.package_id,
        "order": r.order_id,
        "customer": r.customer_id,
        "size": r.size.value,
        "rank": r.size.rank,
        "a": a,
        "b": b,
        "c": c,
        "code": generate_code(),
        "fingerprint": r.fingerprint(),
        "now": job.now,
        "expires": job.now + job.hold,
    }


def _logged_state(row: DictRow) -> tuple[str, AllocationState]:
    """(location id, state) of a new allocation, for the change log, from its statement's row."""
    state = changelog.state_of({**row, "code": row["pickup_code"], "return_reason": None})
    return row["location_id"], state


def _outcome(job: Job, row: DictRow) -> tuple[DictRow, bool] | BaseException | None:
    """The answer a statement's row gives, or None if ``reserve`` must decide."""
    r = job.request
    if row["duplicate"]:
        return None  # a retry or a conflicting reuse: reserve's replay logic answers
    if not row["location_found"]:
        return errors.LocationNotFound(f"no location {r.location_id!r}")
    if not row["location_active"]:
        return errors.LocationInactive(f"location {r.location_id!r} is not taking parcels")
    if not row["door_found"]:
        return errors.LocationFull(
            f"no free {r.size.value} or larger door at {r.location_id}",
            details={"location_id": r.location_id, "size": r.size.value},
        )
    if row["allocation_id"] is None:
        raise _Redo  # a door was found but the code or the insert lost a race
    view: DictRow = {k: v for k, v in row.items() if k not in _FLAGS}
    return view, True


async def reserve_many(conn: Conn, jobs: Sequence[Job]) -> None:
    """Allocates for every job, filling in ``job.result`` (an answer or an exception).

    The same answers, one by one, as ``allocation.reserve``; but one transaction and
    one commit for the whole batch, and its statements pipelined.
    """
    outcomes: list[tuple[DictRow, bool] | BaseException | None] = []
    logged: list[tuple[str, AllocationState]] = []
    try:
        async with conn.pipeline(), conn.transaction():
            # Left to choose, PostgreSQL plans this statement afresh on every execution
            # (its custom plans look cheaper than the generic one), which costs more
            # CPU than executing it. The generic plan uses the same indexes. LOCAL:
            # only for this transaction, not for the pooled connection's next user.
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursors = [await conn.execute(_ALLOCATE_SQL, _params(job)) for job in jobs]
            for job, cur in zip(jobs, cursors, strict=True):
                row = await cur.fetchone()
                assert row is not None, "the statement always returns one row"
                outcome = _outcome(job, row)
                outcomes.append(outcome)
                if isinstance(outcome, tuple):
                    logged.append(_logged_state(row))
            if logged:
                # Last in the transaction, as the change log wants (it locks the locations).
                # The rows hold each allocation's final state, so nothing is read back, and
                # the appends are not waited for: they go to the server with the COMMIT.
                await changelog.record_states(conn, max(job.now for job in jobs), logged)
    except Exception as exc:  # a failed statement or a lost race: the batch rolled back
        if not isinstance(exc, _Redo):
            log.warning("allocation batch of %d redone one by one: %r", len(jobs), exc)
        outcomes = [None] * len(jobs)
    # Committed: only now do the answers stand.
    for job, outcome in zip(jobs, outcomes, strict=True):
        job.result = outcome
    for job in jobs:
        if job.result is None:
            try:
                job.result = await allocation.reserve(
                    conn,
                    carrier_id=job.carrier_id,
                    request=job.request,
                    now=job.now,
                    hold=job.hold,
                )
            except Exception as exc:
                job.result = exc


@dataclass
class _Waiting:
    job: Job
    done: asyncio.Future[None]


@dataclass
class AllocationBatcher:
    """Collects concurrent allocation requests and runs them in batches.

    ``workers`` batches may be in flight at once, each on its own pooled
    connection. A worker takes every request waiting when it is free (up to
    ``max_batch``), so a lone request is never delayed: batches form only when
    requests arrive faster than one transaction completes.
    """

    pool: Pool
    workers: int = 4
    max_batch: int = 64
    _queue: asyncio.Queue[_Waiting] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"allocation-batch-{i}")
            for i in range(self.workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():
            waiting = self._queue.get_nowait()
            if not waiting.done.done():
                waiting.done.set_exception(RuntimeError("the service is shutting down"))

    async def reserve(
        self, *, carrier_id: str, request: AllocationRequest, now: datetime, hold: timedelta
    ) -> tuple[DictRow, bool]:
        """As ``allocation.reserve``, on a connection of the batcher's choosing."""
        job = Job(carrier_id=carrier_id, request=request, now=now, hold=hold)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(job, done))
        await done
        result = job.result
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        return result

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # A request whose caller went away (client disconnected) is not sent.
            live = [w for w in batch if not w.done.done()]
            try:
                if live:
                    async with self.pool.connection() as conn:
                        await reserve_many(conn, [w.job for w in live])
            except Exception as exc:  # e.g. no connection: every caller gets the error
                for w in live:
                    w.job.result = exc
            finally:
                # Also when this worker is cancelled (shutdown) halfway through a batch.
                for w in live:
                    if not w.done.done():
                        if w.job.result is None:
                            w.done.set_exception(RuntimeError("the service is shutting down"))
                        else:
                            w.done.set_result(None)
