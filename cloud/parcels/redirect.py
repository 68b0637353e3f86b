"""Redirecting a reserved parcel to another location, before it is deposited.

The allocation keeps its id, package and hold, and gets a door and the customer's pickup code
at the new location (joined or issued); its old door is freed and the old code retired if no
other parcel needs it. The change log tells both kiosks: the old location's sees the allocation
cancelled there, the new one's sees it reserved (`cloud.store.transaction.Unit.departed`).
A retry of the original request (same package, old location) is then an idempotency conflict:
the allocation is not where that request asked any more.
"""

from __future__ import annotations

import dataclasses

from cloud import errors
from cloud.parcels import notices
from cloud.parcels.requests import AllocationRequest
from cloud.parcels.reserve import check_location, location_full
from cloud.store import allocations as store_allocations
from cloud.store import carrier_events, codes
from cloud.store import doors as store_doors
from cloud.store.records import Allocation, AllocationKind
from cloud.store.transaction import Unit
from shared.states import AllocationStatus, DoorStatus


async def redirect(work: Unit, allocation: Allocation, location_id: str) -> None:
    """Moves a reserved delivery to ``location_id``.

    Raises:
        WrongState: not a reserved delivery (deposited parcels stay where they are).
        BadRequest: it is at that location already.
        LocationNotFound, LocationInactive, LocationFull: the new location cannot take it.
    """
    if allocation.kind is not AllocationKind.DELIVERY or (
        allocation.status is not AllocationStatus.RESERVED
    ):
        raise errors.WrongState(
            "only a reserved delivery can be redirected, before it is deposited",
            details={"status": allocation.status.value},
        )
    if allocation.location_id == location_id:
        raise errors.BadRequest(f"the parcel is at {location_id} already")
    await check_location(work.conn, location_id)
    door = await store_doors.claim_free(work, location_id, allocation.size)
    if door is None:
        raise location_full(location_id, allocation.size)
    code = await codes.for_customer(
        work,
        location_id=location_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
    )
    request = AllocationRequest(
        location_id=location_id,
        package_id=allocation.package_id,
        order_id=allocation.order_id,
        customer_id=allocation.customer_id,
        size=allocation.size,
    )
    await store_allocations.relocate(
        work,
        allocation.allocation_id,
        location_id=location_id,
        door_id=door.door_id,
        pickup_code_id=code.pickup_code_id,
        fingerprint=request.fingerprint(),
    )
    await store_doors.set_status(
        work, [allocation.door_id], DoorStatus.AVAILABLE, only_from=[DoorStatus.RESERVED]
    )
    await codes.retire_orphaned(work, [allocation.pickup_code_id])
    await carrier_events.redirected(work, allocation.allocation_id)
    # issue 10: the customer is told where the parcel now goes (their pickup code comes, as
    # always, once it is deposited there).
    moved = (await store_allocations.load(work.conn, [allocation.allocation_id]))[
        allocation.allocation_id
    ]
    await notices.redirected(work, moved, from_location_id=allocation.location_id)
    work.departed(
        dataclasses.replace(
            allocation, status=AllocationStatus.CANCELLED, cancel_reason="redirected"
        )
    )
