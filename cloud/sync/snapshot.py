"""A location's whole state at one revision: the answer when the change log cannot catch up.

Read in one REPEATABLE READ transaction, so the revision, the live allocations and the doors in
maintenance are of one moment: a change committing meanwhile is either wholly in the snapshot
(and below its revision) or wholly after it.
"""

from __future__ import annotations

from cloud.store import changelog
from cloud.store.database import Pool
from shared.protocol import SnapshotBody


async def build_snapshot(pool: Pool, location_id: str) -> SnapshotBody:
    """Every live allocation and every door in maintenance, with the revision they are at.

    Raises:
        LookupError: no such location.
    """
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur = await conn.execute(
            "SELECT revision FROM locations WHERE location_id = %s", (location_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise LookupError(f"no location {location_id!r}")
        allocations = await changelog.live_allocation_states(conn, location_id)
        cur = await conn.execute(
            "SELECT door_number AS door, maintenance_reason AS reason FROM doors"
            " WHERE location_id = %s AND status = 'maintenance' ORDER BY door_number",
            (location_id,),
        )
        maintenance = await cur.fetchall()
    return SnapshotBody.model_validate(
        {"revision": row["revision"], "allocations": allocations, "maintenance": maintenance}
    )
