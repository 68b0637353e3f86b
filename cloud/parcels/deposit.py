"""The parcel is in its door: a driver's deposit, a customer's return, or a kiosk's report.

One operation for all three: the allocation becomes deposited with its pickup window (none for
a return, which waits for staff), its door occupied, its code live for the customer (a return's
code is spent: it opened the door), and the customer's messages queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from cloud import errors
from cloud.parcels import notices
from cloud.parcels.finish import check
from cloud.store import allocations as store_allocations
from cloud.store import codes, doors
from cloud.store.records import Allocation, AllocationKind, Code
from cloud.store.transaction import Unit
from shared.states import (
    ALLOCATION_TRANSITIONS,
    DOOR_TRANSITIONS,
    AllocationStatus,
    DoorStatus,
)


async def deposit(
    work: Unit,
    allocation: Allocation,
    *,
    at: datetime,
    driver_id: str | None,
    window: timedelta,
    door_id: int | None = None,
    table: Mapping[AllocationStatus, frozenset[AllocationStatus]] = ALLOCATION_TRANSITIONS,
    door_table: Mapping[DoorStatus, frozenset[DoorStatus]] = DOOR_TRANSITIONS,
) -> Allocation:
    """Records the parcel in its door (``door_id``, default its own) as of ``at``.

    ``table`` and ``door_table`` are the transition tables the moves must be in: the service's
    own, or for a kiosk's report of a physical fact the wider ``FACT_*`` tables.

    Returns:
        The deposited allocation.

    Raises:
        IllegalTransition: the tables do not allow the move.
    """
    is_return = allocation.kind is AllocationKind.RETURN
    code = await _deposit_code(work, allocation, at)
    await store_allocations.set_status(
        work,
        [allocation],
        AllocationStatus.DEPOSITED,
        at=at,
        table=table,
        driver_id=None if is_return else driver_id,
        pickup_expires_at=None if is_return else at + window,
        pickup_code_id=code.pickup_code_id,
    )
    await doors.set_status(
        work, [door_id or allocation.door_id], DoorStatus.OCCUPIED, table=door_table
    )
    deposited = await store_allocations.get(work.conn, allocation.allocation_id)
    assert deposited is not None
    work.changed_to(deposited)  # its final state here: the change log needs no read-back
    if not is_return:
        await notices.after_deposit(work, deposited)
    return deposited


async def _deposit_code(work: Unit, allocation: Allocation, at: datetime) -> Code:
    """The code of a parcel being deposited: its own, or (retired by a cancel) a live one."""
    code = await codes.lock(work.conn, allocation.pickup_code_id)
    if allocation.kind is AllocationKind.RETURN:
        # The customer typed the return code to open the door: it is spent.
        return await codes.mark_used(work, code.pickup_code_id, at) or code
    if code.live:
        return code
    # A cancelled reservation's code was retired (or spent meanwhile): the parcel the kiosk
    # holds needs a live code for its customer.
    return await codes.for_customer(
        work,
        location_id=allocation.location_id,
        carrier_id=allocation.carrier_id,
        customer_id=allocation.customer_id,
    )


async def deposit_by_driver(
    work: Unit,
    allocation: Allocation,
    *,
    driver_id: str,
    scan_code: str,
    window: timedelta,
) -> Allocation:
    """A driver reports the parcel in its door (the carrier API).

    Raises:
        WrongState: not reserved, a return, or the reservation timed out.
        ScanMismatch: the scanned barcode is not this allocation's package.
    """
    if allocation.kind is not AllocationKind.DELIVERY:
        raise errors.WrongState("a return is dropped off by the customer with its return code")
    check(allocation, AllocationStatus.DEPOSITED, "deposit")
    if allocation.reservation_expires_at <= work.now:
        raise errors.WrongState(
            "the reservation has timed out; request a new allocation",
            details={"status": "reservation_expired"},
        )
    if scan_code.strip() != allocation.package_id:
        raise errors.ScanMismatch(
            "the scanned barcode does not match this allocation's package",
            details={"expected_package_id": allocation.package_id},
        )
    return await deposit(work, allocation, at=work.now, driver_id=driver_id, window=window)
