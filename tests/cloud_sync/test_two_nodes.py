"""Two cloud nodes on one database run the lifecycle jobs and the notification dispatch at the
same time: each parcel expires once, each change is logged once, each notification is sent once
(``FOR UPDATE SKIP LOCKED`` and leases, not a leader election)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

from cloud import doors, lifecycle, locations
from cloud.carriers import create_carrier
from cloud.dispatch import LoggingSender, dispatch_due
from cloud.doors import DoorSpec
from cloud.parcels.requests import AllocationRequest
from cloud.store import database as db
from shared.clock import ManualClock
from shared.sizes import Size
from tests import parcel_ops

from .conftest import HOLD, WINDOW, now

PARCELS = 60


async def test_two_nodes_expire_each_parcel_once_and_send_each_notice_once(
    sync_db_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    location_id, carrier_id = f"loc-{tag}", f"carrier-{tag}"
    node_a = await db.open_pool(sync_db_url, min_size=1, max_size=6)
    node_b = await db.open_pool(sync_db_url, min_size=1, max_size=6)
    try:
        # The session's database holds the parcels of the tests that ran before this one on
        # this worker (which ones depends on how xdist shared the tests out): expire those
        # first, so the counts below are this test's parcels only (it once saw 63 of 60).
        await lifecycle.run_once(node_a, now() + WINDOW + timedelta(hours=1))
        async with node_a.connection() as conn, conn.transaction():
            await create_carrier(
                conn, carrier_id=carrier_id, name=carrier_id, webhook_url=None, now=now()
            )
            await locations.create_location(
                conn,
                location_id=location_id,
                name=location_id,
                address="Street 1",
                latitude=52.2,
                longitude=21.0,
                timezone="Europe/Warsaw",
                operating_hours=None,
                now=now(),
            )
            await doors.add_doors(
                conn, location_id, [DoorSpec(n, Size.SMALL) for n in range(1, PARCELS + 1)], now()
            )
        ids = []
        async with node_a.connection() as conn:
            for n in range(PARCELS):
                row, _ = await parcel_ops.reserve(
                    conn,
                    carrier_id=carrier_id,
                    request=AllocationRequest(
                        location_id=location_id,
                        package_id=f"P{n}",
                        order_id=f"O{n}",
                        customer_id=f"c{n}",
                        size=Size.SMALL,
                    ),
                    now=now(),
                    hold=HOLD,
                )
                await parcel_ops.deposit(
                    conn,
                    carrier_id=carrier_id,
                    allocation_id=row["allocation_id"],
                    driver_id="d1",
                    scan_code=f"P{n}",
                    now=now(),
                    window=WINDOW,
                )
                ids.append(row["allocation_id"])

        later = now() + WINDOW + timedelta(hours=1)
        rounds = [lifecycle.run_once(pool, later) for pool in (node_a, node_b) for _ in range(3)]
        reports = await asyncio.gather(*rounds)
        # Expired once in all: whichever node took each parcel, the other skipped it.
        assert sum(r.parcels_expired for r in reports) == PARCELS

        async with node_a.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM allocations"
                " WHERE location_id = %s AND status = 'expired'",
                (location_id,),
            )
            assert (await cur.fetchone())["n"] == PARCELS  # type: ignore[index]
            cur = await conn.execute(
                "SELECT change->'allocation'->>'allocation_id' AS id FROM location_changes"
                " WHERE location_id = %s AND change->'allocation'->>'status' = 'expired'",
                (location_id,),
            )
            logged = Counter(row["id"] for row in await cur.fetchall())
        assert set(logged) == {str(i) for i in ids}
        assert set(logged.values()) == {1}

        senders = [LoggingSender(), LoggingSender()]
        clock = ManualClock(later)
        for _ in range(3):
            await asyncio.gather(
                dispatch_due(node_a, senders[0], clock), dispatch_due(node_b, senders[1], clock)
            )
        sent = Counter(
            n.idempotency_key for s in senders for n in s.sent if n.carrier_id == carrier_id
        )
        assert sent, "nothing was sent"
        assert set(sent.values()) == {1}  # no notification sent twice
        async with node_a.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM notifications WHERE carrier_id = %s AND status = 'sent'",
                (carrier_id,),
            )
            assert (await cur.fetchone())["n"] == len(sent)  # type: ignore[index]
            cur = await conn.execute(
                "SELECT count(*) AS n FROM notifications WHERE carrier_id = %s"
                " AND status = 'pending' AND due_at <= %s",
                (carrier_id, later),
            )
            assert (await cur.fetchone())["n"] == 0  # type: ignore[index]
    finally:
        await node_a.close()
        await node_b.close()
