"""Return rows: the customer's request that a return allocation holds a door for."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from cloud.store import allocations
from cloud.store.database import Conn
from cloud.store.records import Return

if TYPE_CHECKING:
    from cloud.store.transaction import Unit


async def find_by_order(conn: Conn, carrier_id: str, order_id: str) -> Return | None:
    cur = await conn.execute(
        "SELECT return_id, allocation_id, reason FROM returns"
        " WHERE carrier_id = %s AND order_id = %s",
        (carrier_id, order_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    allocation = await allocations.get(conn, row["allocation_id"])
    assert allocation is not None, "a return's allocation exists (foreign key)"
    return Return(row["return_id"], row["reason"], allocation)


async def insert(
    work: Unit,
    *,
    return_id: uuid.UUID,
    allocation_id: uuid.UUID,
    carrier_id: str,
    order_id: str,
    customer_id: str,
    reason: str | None,
) -> None:
    await work.conn.execute(
        "INSERT INTO returns (return_id, allocation_id, carrier_id, order_id,"
        " customer_id, reason, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (return_id, allocation_id, carrier_id, order_id, customer_id, reason, work.now),
    )
