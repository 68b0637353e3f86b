"""A location with 5,000 live allocations re-synced by a snapshot in parts: the real worker and
PostgreSQL, the real broker, and the kiosk's store applying the parts once all are in.

Before, a snapshot over the 262,144-byte payload limit (about 700 live allocations) was logged
as an error and not sent, so a large or busy location could never be re-synced.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from cloud import doors
from cloud.doors import DoorSpec
from cloud.parcels.requests import AllocationRequest
from cloud.parcels.reserve import Job, reserve_many
from cloud.store import allocations as store_allocations
from cloud.store import snapshots
from cloud.store.database import Conn, Pool
from cloud.sync import publisher
from cloud.sync.snapshot import stream_snapshot
from cloud.sync.worker import SyncWorker
from kiosk.store import CodeHasher, KioskIdentity, Store, allocations, changes
from kiosk.store import doors as kiosk_doors
from kiosk.sync.apply import CheckpointStatus, apply_snapshot
from shared.clock import SystemClock
from shared.protocol import Channel, MessageType, SnapshotBody, SnapshotPartBody, SyncRequestBody
from shared.signing import Signer
from shared.sizes import Size
from shared.snapshot_parts import SnapshotAssembly
from shared.states import AllocationStatus

from .conftest import HOLD, kiosk_peer, make_site, now

LIVE = 5000


async def test_a_location_with_5000_live_allocations_is_resynced_by_a_snapshot_in_parts(
    pool: Pool,
    worker: SyncWorker,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
) -> None:
    site = await make_site(pool, register=False)
    async with pool.connection() as conn, conn.transaction():
        await doors.add_doors(
            conn, site.location_id, [DoorSpec(n, Size.SMALL) for n in range(6, LIVE + 6)], now()
        )
    for start in range(0, LIVE, 500):
        jobs = [
            Job(
                site.carrier_id,
                AllocationRequest(
                    location_id=site.location_id,
                    package_id=f"PKG-{n:05d}",
                    order_id=f"ORD-{n:05d}",
                    customer_id=f"cust-{n:05d}",
                    size=Size.SMALL,
                ),
                now(),
                HOLD,
            )
            for n in range(start, start + 500)
        ]
        async with pool.connection() as conn:
            await reserve_many(conn, jobs)
        assert all(not isinstance(job.result, BaseException) for job in jobs)
    # Registered now: a request from before its registration is answered with a snapshot.
    await site.register_kiosk()
    revision = await site.revision()

    async with kiosk_peer(site, mqtt_broker, cloud_signer) as peer:
        await peer.send(
            Channel.KIOSK_SYNC, MessageType.SYNC_REQUEST, SyncRequestBody(since_revision=0)
        )
        assembly = SnapshotAssembly()
        whole: SnapshotBody | None = None
        parts = 0
        while whole is None:
            message = await peer.expect(MessageType.SNAPSHOT_PART, within=60)
            assert isinstance(message.body, SnapshotPartBody)
            parts += 1
            whole = assembly.add(message.body)
    assert parts > 1
    assert whole.revision == revision
    assert len(whole.allocations) == LIVE

    layout = dict.fromkeys(range(1, LIVE + 6), Size.SMALL) | {4: Size.MEDIUM, 5: Size.MEDIUM}
    identity = KioskIdentity(site.location_id, site.kiosk_id)
    with Store.in_memory(CodeHasher(site.code_secret), identity) as store:
        at = datetime.now(UTC)
        with store.transaction() as db:
            kiosk_doors.sync_layout(db, layout, at)
        result = apply_snapshot(store, whole, at)
        assert result.status is CheckpointStatus.APPLIED
        assert changes.last_revision(store.db) == revision
        here = allocations.list_allocations(store.db, [AllocationStatus.RESERVED])
        assert len(here) == LIVE
        assert all(allocation.door is not None for allocation in here)


async def test_a_streamed_snapshot_is_of_one_moment_while_changes_commit_between_its_parts(
    pool: Pool,
) -> None:
    # issue 14: the parts are read through a cursor and built one at a time. A reservation
    # committing while they stream must be in none of them, and every part must agree.
    site = await make_site(pool)
    async with pool.connection() as conn, conn.transaction():
        await doors.add_doors(
            conn, site.location_id, [DoorSpec(n, Size.SMALL) for n in range(6, 30)], now()
        )
    reserved = {str((await site.reserve())["allocation_id"]) for _ in range(12)}
    revision = await site.revision()
    parts: list[SnapshotPartBody] = []
    async with pool.connection() as conn, conn.transaction():
        await snapshots.read_one_moment(conn)
        async for body in stream_snapshot(conn, site.location_id, per_part=5):
            assert isinstance(body, SnapshotPartBody)
            parts.append(body)
            if len(parts) == 1:
                await site.reserve()  # commits on another connection, between the parts
    assert [p.part for p in parts] == [1, 2, 3]
    assert {p.parts for p in parts} == {3}
    assert {p.revision for p in parts} == {revision}
    assert len({p.snapshot_id for p in parts}) == 1
    assert {a.allocation_id for p in parts for a in p.allocations} == reserved
    assert parts[0].labels  # part 1's lists, in part 1 only
    assert not parts[1].labels
    assert await site.revision() > revision


async def test_a_small_snapshot_streams_as_one_body(pool: Pool) -> None:
    site = await make_site(pool)
    await site.reserve()
    async with pool.connection() as conn, conn.transaction():
        await snapshots.read_one_moment(conn)
        bodies = [body async for body in stream_snapshot(conn, site.location_id)]
    [body] = bodies
    assert isinstance(body, SnapshotBody)
    assert len(body.allocations) == 1


async def test_a_publish_failing_between_parts_closes_the_snapshot_cursor_at_once(
    pool: Pool, cloud_signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, a publish that raised between two parts (or a worker cancelled there) left the
    # snapshot's generators suspended with their server-side cursor open. It was closed only at
    # garbage collection, on a connection long back in the pool or closed: CI saw that as a
    # ResourceWarning ("AsyncServerCursor ... was deleted while still open") in a later test.
    site = await make_site(pool)
    async with pool.connection() as conn, conn.transaction():
        await doors.add_doors(
            conn, site.location_id, [DoorSpec(n, Size.SMALL) for n in range(6, 20)], now()
        )
    for _ in range(12):
        await site.reserve()
    made: list[Any] = []
    stream_live_at = store_allocations.stream_live_at

    def watched(conn: Conn, location_id: str, **kwargs: int) -> Any:
        rows = stream_live_at(conn, location_id, **kwargs)
        made.append(rows)
        return rows

    monkeypatch.setattr(store_allocations, "stream_live_at", watched)
    monkeypatch.setattr(publisher, "stream_snapshot", partial(stream_snapshot, per_part=5))
    published: list[str] = []

    async def publish_once(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if published:
            raise ConnectionError("the broker went away")
        published.append(topic)

    sender = publisher.Publisher(pool, cloud_signer, SystemClock(), publish_once)
    with pytest.raises(ConnectionError):
        await sender.send_snapshot(site.location_id)
    assert len(published) == 1
    assert len(made) == 2  # the rows counted once, then streamed
    # A generator's frame is gone once it has finished or been closed.
    assert all(rows.ag_frame is None for rows in made), "a cursor was left open"
