"""A customer's return: a door and a one-time return code, then the drop-off.

Idempotent on (carrier, order id): a retried request returns the return made the first time,
and a reuse of the order id with different details is refused.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from cloud import errors
from cloud.parcels import notices
from cloud.parcels.deposit import deposit
from cloud.parcels.pickup import lock_code
from cloud.parcels.requests import ReturnRequest
from cloud.parcels.reserve import check_location, location_full
from cloud.store import allocations as store_allocations
from cloud.store import codes, doors
from cloud.store import returns as store_returns
from cloud.store.database import Conn
from cloud.store.records import Allocation, CodeKind, Return
from cloud.store.transaction import Unit, unit
from shared.states import AllocationStatus


class _LostInsertRace(Exception):
    """A concurrent request for the same return committed first."""


async def create_return(
    conn: Conn, *, carrier_id: str, request: ReturnRequest, now: datetime, hold: timedelta
) -> tuple[Return, bool]:
    """Reserves a door for a customer's return and issues its return code.

    Returns:
        The return, and True if it was created now (False for a retry).

    Raises:
        LocationNotFound, LocationInactive, LocationFull, IdempotencyConflict.
    """
    existing = await store_returns.find_by_order(conn, carrier_id, request.order_id)
    if existing is None:
        try:
            async with unit(conn, now) as work:
                await _reserve_return(work, carrier_id, request, hold)
        except _LostInsertRace:
            pass  # rolled back, door claim included; answer as the winner did
        else:
            found = await store_returns.find_by_order(conn, carrier_id, request.order_id)
            assert found is not None
            return found, True
        existing = await store_returns.find_by_order(conn, carrier_id, request.order_id)
        assert existing is not None, "a conflicting insert committed, so the row exists"
    if existing.allocation.request_fingerprint != request.fingerprint():
        raise errors.IdempotencyConflict(
            f"order {request.order_id} already has a return with different details",
            details={"return_id": str(existing.return_id)},
        )
    return existing, False


async def _reserve_return(
    work: Unit, carrier_id: str, request: ReturnRequest, hold: timedelta
) -> None:
    await check_location(work.conn, request.location_id)
    door = await doors.claim_free(work, request.location_id, request.size)
    if door is None:
        raise location_full(request.location_id, request.size)
    code = await codes.issue(
        work,
        location_id=request.location_id,
        carrier_id=carrier_id,
        customer_id=request.customer_id,
        kind=CodeKind.RETURN,
    )
    allocation_id, return_id = uuid.uuid4(), uuid.uuid4()
    inserted = await store_allocations.insert_reserved_return(
        work,
        allocation_id=allocation_id,
        carrier_id=carrier_id,
        location_id=request.location_id,
        door_id=door.door_id,
        order_id=request.order_id,
        customer_id=request.customer_id,
        size=request.size,
        pickup_code_id=code.pickup_code_id,
        fingerprint=request.fingerprint(),
        hold=hold,
    )
    if not inserted:
        raise _LostInsertRace
    await store_returns.insert(
        work,
        return_id=return_id,
        allocation_id=allocation_id,
        carrier_id=carrier_id,
        order_id=request.order_id,
        customer_id=request.customer_id,
        reason=request.reason,
    )
    allocation = await store_allocations.get(work.conn, allocation_id)
    assert allocation is not None
    await notices.return_code(work, allocation, str(return_id))


async def drop_off(
    work: Unit, *, location_id: str, code_text: str, carrier_id: str | None
) -> Allocation:
    """The customer put the return into its door: the door is occupied until collected.

    Raises:
        InvalidCode, CodeNotFound, CodeAlreadyUsed, CodeExpired.
    """
    code = await lock_code(work, location_id, code_text, CodeKind.RETURN, carrier_id)
    waiting = await store_allocations.lock_on_code(
        work.conn, code.pickup_code_id, [AllocationStatus.RESERVED]
    )
    if not waiting or waiting[0].reservation_expires_at <= work.now:
        raise errors.CodeExpired("this return code is no longer valid")
    return await deposit(work, waiting[0], at=work.now, driver_id=None, window=timedelta(0))
