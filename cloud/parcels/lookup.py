"""Finding the allocation a caller names, as that caller may see it."""

from __future__ import annotations

import uuid

from cloud import errors
from cloud.store import allocations
from cloud.store.database import Conn
from cloud.store.records import Allocation


async def allocation_for(
    conn: Conn, allocation_id: uuid.UUID, carrier_id: str | None, *, lock: bool = True
) -> Allocation:
    """The allocation (row-locked to the end of the transaction, by default).

    ``carrier_id`` None is the admin, who sees every carrier's allocations.

    Raises:
        AllocationNotFound: no such allocation, or it belongs to another carrier.
    """
    found = await (allocations.lock if lock else allocations.get)(conn, allocation_id)
    if found is None or (carrier_id is not None and found.carrier_id != carrier_id):
        raise errors.AllocationNotFound(f"no allocation {allocation_id}")
    return found
