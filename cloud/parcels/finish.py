"""The allocation ends or waits for staff: cancel, expire, collect (and a pickup's own end).

Ending an allocation (cancelled, collected, picked up) frees its door, drops the messages not
sent yet and retires its code once no parcel it could open remains. An expired parcel keeps
its door, which awaits collection by staff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from cloud import errors
from cloud.parcels import notices
from cloud.store import allocations as store_allocations
from cloud.store import codes, doors
from cloud.store.records import Allocation
from cloud.store.transaction import Unit
from shared.states import (
    ALLOCATION_TRANSITIONS,
    AllocationStatus,
    DoorStatus,
    IllegalTransition,
    allocation_transition,
)

# The service's own cancel reasons (a carrier gives its own when it cancels).
RESERVATION_TIMEOUT = "reservation_timeout"
NO_DOOR = "no_door"

# The door statuses a live allocation's door can be in; a door that went into maintenance
# meanwhile stays there when its allocation ends.
_HELD_DOOR = (DoorStatus.RESERVED, DoorStatus.OCCUPIED, DoorStatus.AWAITING_COLLECTION)


def check(allocation: Allocation, target: AllocationStatus, action: str) -> None:
    """Refuses, as the API answers it, a move the state machine does not allow.

    Raises:
        WrongState: with the allocation's status in ``details``.
    """
    try:
        allocation_transition(allocation.status, target)
    except IllegalTransition:
        raise errors.WrongState(
            f"cannot {action} an allocation that is {allocation.status.value}",
            details={"status": allocation.status.value},
        ) from None


async def end(
    work: Unit,
    allocations: Sequence[Allocation],
    target: AllocationStatus,
    *,
    at: datetime | None = None,
    cancel_reason: str | None = None,
    table: Mapping[AllocationStatus, frozenset[AllocationStatus]] = ALLOCATION_TRANSITIONS,
) -> None:
    """Moves allocations to a final status (stamped ``at``), frees their doors, tidies up."""
    await store_allocations.set_status(
        work, allocations, target, at=at, cancel_reason=cancel_reason, table=table
    )
    await doors.set_status(
        work, [a.door_id for a in allocations], DoorStatus.AVAILABLE, only_from=_HELD_DOOR
    )
    await notices.drop_pending(work, list(allocations))
    await codes.retire_orphaned(work, [a.pickup_code_id for a in allocations])


async def cancel(work: Unit, allocation: Allocation, reason: str) -> None:
    """Cancels a reservation at its carrier's request and frees its door. Twice is a no-op.

    Raises:
        WrongState: the parcel is already in (or out of) the locker.
    """
    if allocation.status is not AllocationStatus.CANCELLED:
        check(allocation, AllocationStatus.CANCELLED, "cancel")
        await end(work, [allocation], AllocationStatus.CANCELLED, cancel_reason=reason)


async def cancel_timed_out(work: Unit, allocations: Sequence[Allocation]) -> None:
    """Cancels reservations whose hold ran out (the parcel never came)."""
    await end(work, allocations, AllocationStatus.CANCELLED, cancel_reason=RESERVATION_TIMEOUT)


async def cancel_for_no_door(work: Unit, allocation: Allocation) -> None:
    """Cancels a reservation the kiosk left without a door, and tells its carrier."""
    await end(work, [allocation], AllocationStatus.CANCELLED, cancel_reason=NO_DOOR)
    await notices.cancelled(work, allocation, NO_DOOR)


async def expire(work: Unit, allocations: Sequence[Allocation]) -> None:
    """The pickup window ended: the parcels wait for staff, their customers are told."""
    await store_allocations.set_status(work, allocations, AllocationStatus.EXPIRED)
    await doors.set_status(work, [a.door_id for a in allocations], DoorStatus.AWAITING_COLLECTION)
    for allocation in allocations:
        await notices.expired(work, allocation)
    # The code opens nothing any more unless another parcel still waits on it.
    await codes.retire_orphaned(work, [a.pickup_code_id for a in allocations])


async def collect(work: Unit, allocation: Allocation) -> None:
    """Staff or the carrier emptied the door: an expired parcel, a return, or a recall.

    Raises:
        WrongState: nothing to collect (not yet deposited, or already finished otherwise).
    """
    if allocation.status is not AllocationStatus.COLLECTED:
        check(allocation, AllocationStatus.COLLECTED, "collect")
        await end(work, [allocation], AllocationStatus.COLLECTED)
