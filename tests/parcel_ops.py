"""The parcel operations as the tests call them: by allocation id, one transaction each.

The service calls `cloud.parcels` inside its own units of work (the API routes, the kiosk
events); tests that only need "cancel this allocation now" use these, and get the allocation
back as a plain dict keyed like the API's columns, to compare and print easily.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

from cloud.parcels import deposit as deposits
from cloud.parcels import finish, returns
from cloud.parcels import pickup as pickups
from cloud.parcels import reserve as reserving
from cloud.parcels.lookup import allocation_for
from cloud.parcels.requests import AllocationRequest, ReturnRequest
from cloud.store import allocations
from cloud.store.database import Conn
from cloud.store.records import Allocation
from cloud.store.transaction import unit


def as_row(allocation: Allocation) -> dict[str, Any]:
    return {f.name: getattr(allocation, f.name) for f in dataclasses.fields(allocation)}


async def reserve(
    conn: Conn, *, carrier_id: str, request: AllocationRequest, now: datetime, hold: timedelta
) -> tuple[dict[str, Any], bool]:
    made, created = await reserving.reserve(
        conn, carrier_id=carrier_id, request=request, now=now, hold=hold
    )
    return as_row(made), created


async def deposit(
    conn: Conn,
    *,
    carrier_id: str | None,
    allocation_id: uuid.UUID,
    driver_id: str,
    scan_code: str,
    now: datetime,
    window: timedelta,
) -> dict[str, Any]:
    async with unit(conn, now) as work:
        found = await allocation_for(conn, allocation_id, carrier_id)
        done = await deposits.deposit_by_driver(
            work, found, driver_id=driver_id, scan_code=scan_code, window=window
        )
    return as_row(done)


async def cancel(
    conn: Conn, *, carrier_id: str | None, allocation_id: uuid.UUID, reason: str, now: datetime
) -> dict[str, Any]:
    async with unit(conn, now) as work:
        await finish.cancel(work, await allocation_for(conn, allocation_id, carrier_id), reason)
    found = await allocations.get(conn, allocation_id)
    assert found is not None
    return as_row(found)


async def collect(
    conn: Conn, *, carrier_id: str | None, allocation_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    async with unit(conn, now) as work:
        await finish.collect(work, await allocation_for(conn, allocation_id, carrier_id))
    found = await allocations.get(conn, allocation_id)
    assert found is not None
    return as_row(found)


async def create_return(
    conn: Conn, *, carrier_id: str, request: ReturnRequest, now: datetime, hold: timedelta
) -> tuple[dict[str, Any], bool]:
    made, created = await returns.create_return(
        conn, carrier_id=carrier_id, request=request, now=now, hold=hold
    )
    return {**as_row(made.allocation), "return_id": made.return_id}, created


async def pickup(
    conn: Conn, *, location_id: str, code_text: str, carrier_id: str | None, now: datetime
) -> list[dict[str, Any]]:
    async with unit(conn, now) as work:
        opened = await pickups.pick_up(
            work, location_id=location_id, code_text=code_text, carrier_id=carrier_id
        )
    return [as_row(a) for a in opened]
