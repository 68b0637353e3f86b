"""Reserving a door for a parcel: one statement, for one request or for a batch.

Each reservation is one SQL statement (`cloud.store.allocations.RESERVE_SQL`: location check,
door claim, pickup code, allocation insert and the read-back). `reserve` runs it for one
request; `reserve_many` sends the statements of many concurrent requests together, pipelined,
in one transaction with one commit (`cloud.parcels.batcher` gathers them). Both read the
statement's answer with `_outcome`, so they answer alike.

The invariant "a door never holds two parcels" rests on three things: the free door is claimed
with ``FOR UPDATE SKIP LOCKED``, so concurrent requests never pick the same door; the door's
status changes in the transaction that inserts the allocation; and an exclusion constraint
refuses a second live allocation on one door, whatever code tries it. Statements later in a
batch see the changes of earlier ones (one transaction), so two parcels for one location get
two doors and two parcels for one customer share one code.

Idempotency: (carrier, package id) is unique; a retried request returns the allocation made
the first time (a retry racing the first request waits for it to commit, see
`cloud.store.allocations.hold_packages`), and a reuse of the package id with different details
is refused. A statement that lost a race (its drawn code taken, a concurrent insert of the same
package) changes nothing once rolled back, and the request is tried again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow

from cloud import errors
from cloud.parcels.requests import AllocationRequest
from cloud.store import allocations as store_allocations
from cloud.store import locations as store_locations
from cloud.store.codes import MAX_DRAWS
from cloud.store.database import Conn
from cloud.store.records import Allocation
from cloud.store.transaction import Unit, unit
from shared.codes import generate_code
from shared.sizes import Size

log = logging.getLogger(__name__)

Result = tuple[Allocation, bool]


class _Redo(Exception):
    """A statement lost a race: roll back, and try the request again."""


def location_full(location_id: str, size: Size) -> errors.LocationFull:
    """The answer when no free door fits; ``details["nearest"]`` is filled by the API."""
    return errors.LocationFull(
        f"no free {size.value} or larger door at {location_id}",
        details={"location_id": location_id, "size": size.value},
    )


async def check_location(conn: Conn, location_id: str) -> None:
    """Raises unless the location exists and takes parcels.

    Raises:
        LocationNotFound, LocationInactive.
    """
    location = await store_locations.get(conn, location_id)
    if location is None:
        raise errors.LocationNotFound(f"no location {location_id!r}")
    if not location["active"]:
        raise errors.LocationInactive(f"location {location_id!r} is not taking parcels")


def _params(
    carrier_id: str, request: AllocationRequest, now: datetime, hold: timedelta
) -> dict[str, Any]:
    return store_allocations.reserve_params(
        allocation_id=uuid.uuid4(),
        carrier_id=carrier_id,
        location_id=request.location_id,
        package_id=request.package_id,
        order_id=request.order_id,
        customer_id=request.customer_id,
        size=request.size,
        dimensions=request.dimensions,
        code=generate_code(),
        fingerprint=request.fingerprint(),
        now=now,
        hold=hold,
        accessible=request.accessible,
    )


def _outcome(work: Unit, request: AllocationRequest, row: DictRow) -> Result | Exception | None:
    """The answer a statement's row gives, or None if the package id was seen before.

    Raises:
        _Redo: a door was found but the code or the insert lost a race.
    """
    if row["duplicate"]:
        return None  # a retry or a conflicting reuse: `_replay` answers
    if not row["location_found"]:
        return errors.LocationNotFound(f"no location {request.location_id!r}")
    if not row["location_active"]:
        return errors.LocationInactive(f"location {request.location_id!r} is not taking parcels")
    if not row["door_found"]:
        if request.accessible:
            return errors.NoAccessibleDoor(
                f"no free accessible {request.size.value} or larger door at {request.location_id}",
                details={"location_id": request.location_id, "size": request.size.value},
            )
        return location_full(request.location_id, request.size)
    allocation = store_allocations.reserved_from(work, row)
    if allocation is None:
        raise _Redo
    return allocation, True


def _replay(existing: Allocation, request: AllocationRequest) -> Result:
    if existing.request_fingerprint != request.fingerprint():
        raise errors.IdempotencyConflict(
            f"package {request.package_id} was already allocated with different details",
            details={"allocation_id": str(existing.allocation_id)},
        )
    return existing, False


async def reserve(
    conn: Conn,
    *,
    carrier_id: str,
    request: AllocationRequest,
    now: datetime,
    hold: timedelta,
) -> Result:
    """Reserves a door for a parcel, for ``hold``.

    Returns:
        The allocation, and True if it was created now (False for a retry).

    Raises:
        LocationNotFound, LocationInactive, IdempotencyConflict, LocationFull.
    """
    for _ in range(MAX_DRAWS):
        try:
            async with unit(conn, now) as work:
                await store_allocations.hold_packages(work, [(carrier_id, request.package_id)])
                cur = await store_allocations.send_reserve(
                    work, _params(carrier_id, request, now, hold)
                )
                row = await cur.fetchone()
                assert row is not None, "the statement always returns one row"
                outcome = _outcome(work, request, row)
        except _Redo:
            continue  # rolled back: the door claim and the code with it
        if outcome is None:
            existing = await store_allocations.find_by_package(conn, carrier_id, request.package_id)
            if existing is None:
                continue  # the earlier allocation was there, then not: look again
            return _replay(existing, request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    raise RuntimeError(f"reserving {request.package_id} lost {MAX_DRAWS} races in a row")


@dataclass(slots=True)
class Job:
    """One reservation request of a batch, and its answer once the batch ran."""

    carrier_id: str
    request: AllocationRequest
    now: datetime
    hold: timedelta
    result: Result | BaseException | None = None


async def reserve_many(conn: Conn, jobs: Sequence[Job]) -> None:
    """Reserves for every job, filling in ``job.result`` (an answer or an exception).

    The same answers, one by one, as `reserve`, but one transaction and one commit for the
    whole batch, and its statements pipelined. A retried package id, and every request of a
    batch in which a statement failed or lost a race, are handed to `reserve` afterwards (the
    batch rolled back first, so it changed nothing).
    """
    outcomes: list[Result | Exception | None] = []
    try:
        # The change log's appends are not waited for: they go to the server with the COMMIT.
        async with conn.pipeline(), unit(conn, max(job.now for job in jobs)) as work:
            await store_allocations.prefer_generic_plan(work)
            await store_allocations.hold_packages(
                work, [(job.carrier_id, job.request.package_id) for job in jobs]
            )
            cursors = [
                await store_allocations.send_reserve(
                    work, _params(job.carrier_id, job.request, job.now, job.hold)
                )
                for job in jobs
            ]
            for job, cur in zip(jobs, cursors, strict=True):
                row = await cur.fetchone()
                assert row is not None, "the statement always returns one row"
                outcomes.append(_outcome(work, job.request, row))
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
                job.result = await reserve(
                    conn, carrier_id=job.carrier_id, request=job.request, now=job.now, hold=job.hold
                )
            except Exception as exc:
                job.result = exc
