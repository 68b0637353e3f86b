"""The customer's code opens its parcels, once; the code is spent.

Parcels of the same code that are still on their way (reserved) move to a new code, sent to
the customer when they are deposited: a spent code opens nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime

from cloud import errors
from cloud.parcels.finish import end
from cloud.store import allocations as store_allocations
from cloud.store import codes
from cloud.store.records import Allocation, Code, CodeKind
from cloud.store.transaction import Unit
from shared.codes import InvalidCode, normalize_code
from shared.states import AllocationStatus


def parse_code(code_text: str) -> str:
    """The typed code, normalized.

    Raises:
        InvalidCode: not a code at all.
    """
    try:
        return normalize_code(code_text)
    except InvalidCode as exc:
        raise errors.InvalidCode(str(exc)) from None


async def lock_code(
    work: Unit, location_id: str, code_text: str, kind: CodeKind, carrier_id: str | None
) -> Code:
    """The live code typed at a location, locked.

    Raises:
        InvalidCode, CodeNotFound (``details.reason``: unknown, wrong_location), CodeAlreadyUsed,
        CodeExpired.
    """
    code = parse_code(code_text)
    found = await codes.lock_at_location(work.conn, location_id, code, kind, carrier_id)
    if found is None:
        elsewhere = await codes.live_elsewhere(work.conn, code, kind, carrier_id)
        if elsewhere is not None:
            raise errors.CodeNotFound(
                "this code is for another locker location",
                details={"reason": "wrong_location", "location_id": elsewhere},
            )
        raise errors.CodeNotFound("no such code at this location", details={"reason": "unknown"})
    if found.used_at is not None:
        raise errors.CodeAlreadyUsed("this code has already been used")
    if found.retired_at is not None:
        raise errors.CodeExpired("this code is no longer valid")
    return found


async def pick_up(
    work: Unit, *, location_id: str, code_text: str, carrier_id: str | None
) -> list[Allocation]:
    """Opens every deposited parcel of a pickup code at its location, once (the carrier API).

    Returns:
        The allocations opened now, picked up, by door number.

    Raises:
        InvalidCode, CodeNotFound, CodeAlreadyUsed, CodeExpired, NothingToPickUp.
    """
    code = await lock_code(work, location_id, code_text, CodeKind.PICKUP, carrier_id)
    live = await store_allocations.lock_on_code(
        work.conn, code.pickup_code_id, [AllocationStatus.RESERVED, AllocationStatus.DEPOSITED]
    )
    openable = [
        a
        for a in live
        if a.status is AllocationStatus.DEPOSITED
        and a.pickup_expires_at is not None
        and a.pickup_expires_at > work.now
    ]
    if not openable:
        if any(a.status is AllocationStatus.RESERVED for a in live):
            raise errors.NothingToPickUp("your parcel has not been put in the locker yet")
        raise errors.CodeExpired("the pickup window of this code has ended")
    await end(work, openable, AllocationStatus.PICKED_UP)
    await spend(work, code, work.now, opened=[a.allocation_id for a in openable])
    return [
        dataclasses.replace(a, status=AllocationStatus.PICKED_UP, picked_up_at=work.now)
        for a in openable
    ]


async def spend(work: Unit, code: Code, at: datetime, *, opened: Sequence[uuid.UUID]) -> bool:
    """Marks a code used as of ``at``; its parcels still coming move to a fresh code.

    Returns:
        False if the code was spent already (nothing changed).
    """
    spent = await codes.mark_used(work, code.pickup_code_id, at)
    if spent is None:
        return False
    if spent.kind is CodeKind.PICKUP:
        coming = await store_allocations.lock_on_code(
            work.conn, code.pickup_code_id, [AllocationStatus.RESERVED], except_ids=opened
        )
        if coming:
            fresh = await codes.issue(
                work,
                location_id=code.location_id,
                carrier_id=code.carrier_id,
                customer_id=code.customer_id,
                kind=CodeKind.PICKUP,
            )
            # The kiosk learns their new code hash from the change log.
            await store_allocations.set_code(
                work, [a.allocation_id for a in coming], fresh.pickup_code_id
            )
    return True
