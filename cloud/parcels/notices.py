"""What the customer (and the carrier) is told about an allocation: the payloads and when."""

from __future__ import annotations

from typing import Any

from cloud import notifications
from cloud.store.records import Allocation
from cloud.store.transaction import Unit


def pickup_payload(allocation: Allocation) -> dict[str, Any]:
    """The pickup code message (and its reminders): where, which locker, which code, until."""
    return {
        "allocation_id": str(allocation.allocation_id),
        "package_id": allocation.package_id,
        "order_id": allocation.order_id,
        "location_id": allocation.location_id,
        "address": allocation.address,
        "locker_number": allocation.door_label,
        "door_number": allocation.door_number,
        "pickup_code": allocation.pickup_code,
        "expires_at": allocation.pickup_expires_at,
    }


async def after_deposit(work: Unit, allocation: Allocation) -> None:
    """Queues the pickup code now, and the reminders of the customer's pickup window."""
    await notifications.schedule_after_deposit(
        work.conn,
        allocation={
            "allocation_id": allocation.allocation_id,
            "carrier_id": allocation.carrier_id,
            "customer_id": allocation.customer_id,
            "deposited_at": allocation.deposited_at,
            "pickup_expires_at": allocation.pickup_expires_at,
        },
        payload=pickup_payload(allocation),
        timezone=allocation.timezone,
        now=work.now,
    )


async def expired(work: Unit, allocation: Allocation) -> None:
    """Tells the customer the pickup window ended; the waiting reminders are dropped."""
    await notifications.cancel_pending(
        work.conn, [allocation.allocation_id], notifications.WAITING_KINDS
    )
    await notifications.enqueue(
        work.conn,
        allocation_id=allocation.allocation_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
        kind="expired",
        payload=pickup_payload(allocation),
        due_at=work.now,
        now=work.now,
    )


async def cancelled(work: Unit, allocation: Allocation, reason: str) -> None:
    """Tells the carrier a reservation was cancelled by the service (not at its request)."""
    await notifications.enqueue(
        work.conn,
        allocation_id=allocation.allocation_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
        kind="cancelled",
        payload={
            "allocation_id": str(allocation.allocation_id),
            "package_id": allocation.package_id,
            "order_id": allocation.order_id,
            "location_id": allocation.location_id,
            "reason": reason,
        },
        due_at=work.now,
        now=work.now,
    )


async def return_code(work: Unit, allocation: Allocation, return_id: str) -> None:
    """Sends the customer the return code and the locker to drop the return into."""
    await notifications.enqueue(
        work.conn,
        allocation_id=allocation.allocation_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
        kind="return_code",
        payload={
            "return_id": return_id,
            "order_id": allocation.order_id,
            "location_id": allocation.location_id,
            "address": allocation.address,
            "locker_number": allocation.door_label,
            "door_number": allocation.door_number,
            "return_code": allocation.pickup_code,
            "expires_at": allocation.reservation_expires_at,
        },
        due_at=work.now,
        now=work.now,
    )


async def redirected(work: Unit, allocation: Allocation, *, from_location_id: str) -> None:
    """Tells the customer a reserved parcel now goes to another location (``allocation`` as it
    is there). One per redirect: ``round`` counts the redirects before it."""
    await notifications.enqueue(
        work.conn,
        allocation_id=allocation.allocation_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
        kind="redirected",
        payload={
            "allocation_id": str(allocation.allocation_id),
            "package_id": allocation.package_id,
            "order_id": allocation.order_id,
            "from_location_id": from_location_id,
            "location_id": allocation.location_id,
            "address": allocation.address,
            "locker_number": allocation.door_label,
            "door_number": allocation.door_number,
        },
        due_at=work.now,
        now=work.now,
        round=await notifications.count_kind(work.conn, allocation.allocation_id, "redirected"),
    )


async def drop_pending(work: Unit, allocations: list[Allocation]) -> None:
    """Drops every message not sent yet: the allocations ended."""
    await notifications.cancel_pending(work.conn, [a.allocation_id for a in allocations])
