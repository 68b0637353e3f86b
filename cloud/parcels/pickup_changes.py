"""Changing how a deposited parcel is picked up: a re-issued code, a later deadline.

Both are for a delivery in its door (deposited, pickup window still open) and both reach the
kiosk through the change log: the allocation's new code hash, or its new ``pickup_expires_at``.

A pickup code is the customer's at a location (one live code per customer, shared by all their
parcels there), so re-issuing it moves every parcel of that code to a fresh one and retires the
old code at once: from that commit the old code opens nothing, in the cloud nor, once the kiosk
applied the change, at the kiosk. Pending messages (reminders) carry the new code or deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud import errors, notifications
from cloud.parcels.notices import pickup_payload
from cloud.store import allocations as store_allocations
from cloud.store import codes
from cloud.store import notifications as store_notifications
from cloud.store.records import Allocation, AllocationKind, CodeKind
from cloud.store.transaction import Unit
from shared.states import AllocationStatus


@dataclass(frozen=True, slots=True)
class PickupChangeLimits:
    """How often a code may be re-issued and a deadline extended, and how late it may go.

    Attributes:
        max_reissues: Re-issues of one parcel's code.
        max_extensions: Extensions of one parcel's deadline.
        max_extension: The latest deadline, counted from the end of the first pickup window.
        window: The pickup window a deposit starts.
    """

    max_reissues: int
    max_extensions: int
    max_extension: timedelta
    window: timedelta


def _check_waiting(allocation: Allocation, now: datetime) -> None:
    if allocation.kind is not AllocationKind.DELIVERY:
        raise errors.WrongState(
            "only a delivery has a pickup code to change", details={"kind": allocation.kind}
        )
    if allocation.status is not AllocationStatus.DEPOSITED:
        raise errors.WrongState(
            f"the parcel is {allocation.status}, not in its door",
            details={"status": allocation.status.value},
        )
    if allocation.pickup_expires_at is None or allocation.pickup_expires_at <= now:
        raise errors.WrongState(
            "the parcel's pickup window has ended", details={"status": "pickup_expired"}
        )


async def reissue_code(work: Unit, allocation: Allocation, limits: PickupChangeLimits) -> None:
    """Gives the parcel's customer a new pickup code; the old one stops working now.

    Raises:
        WrongState: not a deposited delivery in its pickup window.
        LimitReached: re-issued `PickupChangeLimits.max_reissues` times already.
    """
    _check_waiting(allocation, work.now)
    count = await store_allocations.count_code_reissue(work, allocation.allocation_id)
    if count > limits.max_reissues:
        raise errors.LimitReached(
            f"this parcel's code was re-issued {limits.max_reissues} times already",
            details={"limit": limits.max_reissues},
        )
    sharing = await store_allocations.lock_on_code(
        work.conn,
        allocation.pickup_code_id,
        [AllocationStatus.RESERVED, AllocationStatus.DEPOSITED],
    )
    await codes.retire(work, allocation.pickup_code_id)
    fresh = await codes.issue(
        work,
        location_id=allocation.location_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
        kind=CodeKind.PICKUP,
    )
    moved = [a.allocation_id for a in sharing]
    await store_allocations.set_code(work, moved, fresh.pickup_code_id)
    await store_notifications.revise_pending(work.conn, moved, {"pickup_code": fresh.code})
    renewed = await store_allocations.get(work.conn, allocation.allocation_id)
    assert renewed is not None
    await notifications.enqueue(
        work.conn,
        allocation_id=renewed.allocation_id,
        carrier_id=renewed.carrier_id,
        customer_id=renewed.customer_id,
        kind="code_reissued",
        payload=pickup_payload(renewed),
        due_at=work.now,
        now=work.now,
        round=count,
    )


async def extend_deadline(
    work: Unit, allocation: Allocation, until: datetime, limits: PickupChangeLimits
) -> None:
    """Moves the parcel's pickup deadline later, to ``until``.

    Raises:
        WrongState: not a deposited delivery in its pickup window.
        BadRequest: ``until`` is not later than the current deadline, or past the latest one.
        LimitReached: extended `PickupChangeLimits.max_extensions` times already.
    """
    _check_waiting(allocation, work.now)
    assert allocation.pickup_expires_at is not None
    assert allocation.deposited_at is not None
    if until <= allocation.pickup_expires_at:
        raise errors.BadRequest(
            "the new deadline must be later than the current one",
            details={"pickup_expires_at": allocation.pickup_expires_at.isoformat()},
        )
    latest = allocation.deposited_at + limits.window + limits.max_extension
    if until > latest:
        raise errors.BadRequest(
            f"the deadline can be extended to {latest.isoformat()} at the latest",
            details={"latest": latest.isoformat()},
        )
    count = await store_allocations.extend_pickup(work, allocation.allocation_id, until)
    if count > limits.max_extensions:
        raise errors.LimitReached(
            f"this parcel's deadline was extended {limits.max_extensions} times already",
            details={"limit": limits.max_extensions},
        )
    shift = until - allocation.pickup_expires_at
    await store_notifications.revise_pending(
        work.conn, [allocation.allocation_id], {"expires_at": until}, shift=shift
    )
    renewed = await store_allocations.get(work.conn, allocation.allocation_id)
    assert renewed is not None
    await notifications.enqueue(
        work.conn,
        allocation_id=renewed.allocation_id,
        carrier_id=renewed.carrier_id,
        customer_id=renewed.customer_id,
        kind="deadline_extended",
        payload=pickup_payload(renewed),
        due_at=work.now,
        now=work.now,
        round=count,
    )
