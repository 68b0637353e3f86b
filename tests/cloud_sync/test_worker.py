"""The worker over a real broker: answers, publishing after commit, rejections, shared load."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta

import aiomqtt
import pytest

from cloud import doors
from cloud.store import changelog
from cloud.store.database import Pool
from cloud.sync.publisher import Publisher, queue_remote_open
from cloud.sync.worker import SyncWorker
from shared.codes import PickupCode, code_hash
from shared.flood_gate import RateLimit
from shared.protocol import (
    BirthBody,
    ChangesBody,
    Channel,
    EventsBody,
    MessageType,
    RemoteOpenBody,
    SnapshotBody,
    SyncRequestBody,
    topic,
)
from shared.signing import Signer
from tests import parcel_ops

from .conftest import KioskPeer, Site, eventually, kiosk_peer, make_site, now, running_worker


def _opened(door: int, n: int) -> dict[str, object]:
    """A ``door_opened`` payload as a kiosk writes it (operation ``n``)."""
    return {
        "operation_id": f"op-{n}",
        "door": door,
        "purpose": "open",
        "actor": "staff",
        "allocation_id": None,
        "attempt": 1,
        "detail": None,
    }


async def test_a_sync_request_is_answered_with_the_changes_since(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    first = await site.reserve()
    await site.reserve()
    # The publisher announces them too; the answer to the request is what is asserted here.
    await peer.send(Channel.KIOSK_SYNC, MessageType.SYNC_REQUEST, SyncRequestBody(since_revision=1))
    message = await peer.expect(
        MessageType.CHANGES, lambda m: isinstance(m.body, ChangesBody) and m.body.from_revision == 1
    )
    assert isinstance(message.body, ChangesBody)
    assert message.body.to_revision == 2
    assert [c.revision for c in message.body.changes] == [2]

    await peer.send(Channel.KIOSK_SYNC, MessageType.SYNC_REQUEST, SyncRequestBody(since_revision=0))
    message = await peer.expect(
        MessageType.CHANGES, lambda m: isinstance(m.body, ChangesBody) and m.body.from_revision == 0
    )
    assert isinstance(message.body, ChangesBody)
    state = message.body.changes[0].allocation  # type: ignore[union-attr]
    assert state.allocation_id == str(first["allocation_id"])
    assert state.code_hash == code_hash(site.code_secret, PickupCode(first["pickup_code"]))


async def test_changes_are_published_after_each_commit(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    reserved = await site.reserve()
    message = await peer.expect(MessageType.CHANGES)
    assert isinstance(message.body, ChangesBody)
    assert (message.body.from_revision, message.body.to_revision) == (0, 1)
    async with site.pool.connection() as conn:
        await doors.set_maintenance(conn, site.location_id, 1, "hinge", now())
    message = await peer.expect(MessageType.CHANGES)
    assert isinstance(message.body, ChangesBody)
    assert (message.body.from_revision, message.body.to_revision) == (1, 3)
    moved, maintenance = message.body.changes
    assert moved.allocation.allocation_id == str(reserved["allocation_id"])  # type: ignore[union-attr]
    assert maintenance.kind == "door_maintenance"


async def test_a_request_for_compacted_revisions_gets_a_snapshot(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    kept = await site.reserve()
    gone = await site.reserve()
    async with site.pool.connection() as conn:
        await doors.set_maintenance(conn, site.location_id, 5, "glass broken", now())
        await parcel_ops.cancel(
            conn, carrier_id=None, allocation_id=gone["allocation_id"], reason="x", now=now()
        )
        await conn.execute(
            "UPDATE location_changes SET created_at = created_at - interval '30 days'"
            " WHERE location_id = %s AND revision <= 2",
            (site.location_id,),
        )
    await changelog.compact(site.pool, now() - timedelta(days=7))
    await peer.send(Channel.KIOSK_SYNC, MessageType.SYNC_REQUEST, SyncRequestBody(since_revision=0))
    message = await peer.expect(MessageType.SNAPSHOT)
    assert isinstance(message.body, SnapshotBody)
    assert message.body.revision == await site.revision()
    assert [a.allocation_id for a in message.body.allocations] == [str(kept["allocation_id"])]
    assert [(m.door, m.reason) for m in message.body.maintenance] == [(5, "glass broken")]


async def test_a_remote_open_is_signed_and_lives_at_most_30_seconds(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    async with site.pool.connection() as conn:
        queued = await queue_remote_open(
            conn,
            location_id=site.location_id,
            door_number=4,
            reason="customer on the phone",
            requested_by="op-3",
            now=now(),
        )
    message = await peer.expect(MessageType.REMOTE_OPEN)
    assert isinstance(message.body, RemoteOpenBody)
    assert message.body.command_id == queued.command_id
    assert message.body.door == 4
    assert message.envelope.expires_at - message.envelope.issued_at <= timedelta(seconds=30)


async def _count_events(pool: Pool, kiosk_id: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM kiosk_events WHERE kiosk_id = %s", (kiosk_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    n: int = row["n"]
    return n


async def test_forged_replayed_expired_and_foreign_messages_change_nothing(
    pool: Pool, worker: SyncWorker, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer
) -> None:
    site, other = await make_site(pool), await make_site(pool)
    parcel = await site.reserve()
    async with kiosk_peer(site, mqtt_broker, cloud_signer) as peer:
        deposit = peer.event(
            "parcel_deposited",
            {
                "allocation_id": str(parcel["allocation_id"]),
                "door": 1,
                "barcode": parcel["package_id"],
                "driver_id": "d",
            },
        )
        body = EventsBody(kiosk_id=site.kiosk_id, events=[deposit])
        events_topic = topic(site.location_id, Channel.KIOSK_EVENTS)
        host, port, _ = mqtt_broker
        async with aiomqtt.Client(host, port, identifier=f"attacker-{uuid.uuid4().hex[:6]}") as raw:
            # Forged: the right sender, someone else's key.
            forged = peer.seal(MessageType.EVENTS, body, signer=Signer.generate())
            await raw.publish(events_topic, forged, qos=1)
            # Expired: signed two hours ago with a one-hour life.
            stale = peer.seal(MessageType.EVENTS, body, at=now() - timedelta(hours=2))
            await raw.publish(events_topic, stale, qos=1)
            # Another location's kiosk, with its own valid key, speaking for this location...
            foreign = peer.seal(
                MessageType.EVENTS,
                EventsBody(kiosk_id=other.kiosk_id, events=[deposit]),
                signer=other.kiosk_signer,
                sender=other.kiosk_id,
            )
            await raw.publish(events_topic, foreign, qos=1)
            # ...or on its own topic about this location's parcel (not at its location).
            own_topic = topic(other.location_id, Channel.KIOSK_EVENTS)
            await raw.publish(
                own_topic,
                peer.seal(
                    MessageType.EVENTS,
                    EventsBody(kiosk_id=other.kiosk_id, events=[deposit]),
                    signer=other.kiosk_signer,
                    sender=other.kiosk_id,
                    location_id=other.location_id,
                ),
                qos=1,
            )
            await raw.publish(events_topic, b"{not json", qos=1)
            await eventually(lambda: _counted(pool, other.kiosk_id, 1))

            await eventually(
                lambda: _stat_at_least(worker, "rejected:bad_signature", "rejected:expired")
            )
            await eventually(lambda: _stat_at_least(worker, "rejected:unknown_sender"))
            await eventually(lambda: _stat_at_least(worker, "rejected:malformed_json"))
            assert (await site.allocation(parcel["allocation_id"]))["status"] == "reserved"
            assert await _count_events(pool, site.kiosk_id) == 0

            # The genuine message is applied once; the same bytes again are a replay.
            genuine = peer.seal(MessageType.EVENTS, body)
            await raw.publish(events_topic, genuine, qos=1)
            await peer.ack_through(1)
            await raw.publish(events_topic, genuine, qos=1)
            await eventually(lambda: _stat_at_least(worker, "rejected:replayed"))
    assert (await site.allocation(parcel["allocation_id"]))["status"] == "deposited"
    assert await _count_events(pool, site.kiosk_id) == 1
    # The other kiosk's event on its own topic names no parcel of its location: recorded as
    # ignored (and acknowledged), nothing applied.
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT outcome FROM kiosk_events WHERE kiosk_id = %s", (other.kiosk_id,)
        )
        assert [r["outcome"] for r in await cur.fetchall()] == ["ignored"]


async def _counted(pool: Pool, kiosk_id: str, expected: int) -> bool:
    return await _count_events(pool, kiosk_id) == expected


async def _stat_at_least(worker: SyncWorker, *names: str) -> bool:
    return all(worker.stats[name] >= 1 for name in names)


async def test_two_workers_on_the_shared_subscription_split_the_load_and_apply_once(
    pool: Pool,
    sync_db_url: str,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
) -> None:
    if not mqtt_broker[2]:
        pytest.skip("the test broker has no shared subscriptions (set LOCKER_TEST_MQTT_URL)")
    site = await make_site(pool)
    async with (
        running_worker(pool, sync_db_url, mqtt_broker, cloud_signer) as one,
        running_worker(pool, sync_db_url, mqtt_broker, cloud_signer) as two,
        kiosk_peer(site, mqtt_broker, cloud_signer) as peer,
    ):
        for i in range(40):
            peer.event("door_opened", _opened(1 + i % 5, i))
        # As a kiosk resends: every message starts at the lowest unacknowledged event, and
        # each one goes out twice, so both workers see overlapping batches.
        acked = 0
        while acked < 40:
            batch = peer.events[acked : acked + 10]
            await peer.send_events(batch)
            await peer.send_events(batch)
            acked = (await peer.ack_through(batch[-1].sequence)).through_sequence
    assert await _count_events(pool, site.kiosk_id) == 40
    assert one.stats["events"] > 0
    assert two.stats["events"] > 0
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT through_sequence FROM kiosk_cursors WHERE kiosk_id = %s", (site.kiosk_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    assert row["through_sequence"] == 40


async def test_a_worker_of_another_share_group_takes_none_of_this_groups_messages(
    pool: Pool,
    sync_db_url: str,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
) -> None:
    # Two test runs (or a staging cloud) on one broker: each group gets every message, rather
    # than the two splitting them (which once starved a CI run while a benchmark ran).
    if not mqtt_broker[2]:
        pytest.skip("the test broker has no shared subscriptions (set LOCKER_TEST_MQTT_URL)")
    site = await make_site(pool)
    other = f"locker-cloud-other-{uuid.uuid4().hex[:8]}"
    async with (
        running_worker(pool, sync_db_url, mqtt_broker, cloud_signer) as ours,
        running_worker(pool, sync_db_url, mqtt_broker, cloud_signer, share_group=other) as theirs,
        kiosk_peer(site, mqtt_broker, cloud_signer) as peer,
    ):
        for i in range(6):
            peer.event("door_opened", _opened(1 + i % 5, i))
            await peer.send_events(peer.events[-1:])

        async def both_saw_all() -> bool:
            return ours.stats["events"] == theirs.stats["events"] == 6

        await eventually(both_saw_all)
    assert await _count_events(pool, site.kiosk_id) == 6


async def test_a_burst_of_notifications_for_one_location_is_one_publishing_round(
    pool: Pool,
    site: Site,
    peer: KioskPeer,
    sync_db_url: str,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twenty changes notified while the worker is busy: one round publishes them, once each."""
    rounds: list[str] = []
    first_done = asyncio.Event()
    release = asyncio.Event()
    publish_pending = Publisher.publish_pending

    async def counted(publisher: Publisher, location_id: str) -> int:
        if location_id != site.location_id:
            return await publish_pending(publisher, location_id)
        rounds.append(location_id)
        published = await publish_pending(publisher, location_id)
        if len(rounds) == 1:
            # Keep the worker busy after the first round, so the burst's notifications wait.
            first_done.set()
            await release.wait()
        return published

    monkeypatch.setattr(Publisher, "publish_pending", counted)
    # A long sweep interval: only the notifications make rounds here.
    async with running_worker(pool, sync_db_url, mqtt_broker, cloud_signer, sweep_interval=60.0):
        await site.reserve()
        await asyncio.wait_for(first_done.wait(), 20)
        for _ in range(10):  # 20 changes, each in its own transaction with its own NOTIFY
            reserved = await site.reserve()
            async with pool.connection() as conn:
                await parcel_ops.cancel(
                    conn,
                    carrier_id=site.carrier_id,
                    allocation_id=reserved["allocation_id"],
                    reason="test",
                    now=now(),
                )
        assert await site.revision() == 21
        # The listener's backend is idle, so PostgreSQL sends each NOTIFY on at commit; this
        # leaves time for all twenty to reach the worker's socket before it looks again.
        await asyncio.sleep(1.0)
        release.set()

        def revisions() -> list[int]:
            return [
                change.revision
                for message in peer.all_received
                if isinstance(message.body, ChangesBody)
                for change in message.body.changes
            ]

        async def all_published() -> bool:
            return 21 in revisions()

        await eventually(all_published)
        await asyncio.sleep(0.5)  # a further round, if any, would show by now
    assert rounds == [site.location_id] * 2  # the first change's, then one for the burst
    assert revisions() == list(range(1, 22))
    assert [m.type for m in peer.all_received] == [MessageType.CHANGES] * 2


async def test_too_deep_json_and_huge_numbers_are_counted_as_rejections_not_failures(
    pool: Pool, worker: SyncWorker, mqtt_broker: tuple[str, int, bool]
) -> None:
    site = await make_site(pool)
    events_topic = topic(site.location_id, Channel.KIOSK_EVENTS)
    deep = b'{"sender": "k", "body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = b'{"v": 1, "sender": "k", "n": ' + b"9" * 5_000 + b"}"
    before = worker.stats["rejected:malformed_json"]
    host, port, _ = mqtt_broker
    async with aiomqtt.Client(host, port, identifier=f"attacker-{uuid.uuid4().hex[:6]}") as raw:
        await raw.publish(events_topic, deep, qos=1)
        await raw.publish(events_topic, huge, qos=1)

        async def both_rejected() -> bool:
            return worker.stats["rejected:malformed_json"] >= before + 2

        await eventually(both_rejected)
    assert worker.stats["failed"] == 0


async def test_a_flood_on_one_topic_is_dropped_with_one_log_line_and_others_go_through(
    pool: Pool,
    sync_db_url: str,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A slow rate past a burst of 1,000: at the default 100/s, a loaded machine publishing the
    # 3,000 messages over 20 s or more let them all through, and nothing was rate-limited.
    limit = RateLimit(per_second=1.0, burst=1_000)
    async with running_worker(
        pool, sync_db_url, mqtt_broker, cloud_signer, topic_limit=limit
    ) as worker:
        await _flood_one_topic(pool, worker, mqtt_broker, cloud_signer, caplog)


async def _flood_one_topic(
    pool: Pool,
    worker: SyncWorker,
    mqtt_broker: tuple[str, int, bool],
    cloud_signer: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flooded, site = await make_site(pool), await make_site(pool)
    parcel = await site.reserve()
    caplog.set_level(logging.WARNING, logger="cloud.sync.worker")
    host, port, _ = mqtt_broker
    junk_topic = topic(flooded.location_id, Channel.KIOSK_HEARTBEAT)
    started = time.monotonic()
    async with aiomqtt.Client(host, port, identifier=f"flood-{uuid.uuid4().hex[:6]}") as raw:
        for n in range(3_000):
            await raw.publish(junk_topic, b"junk %d" % n, qos=0)

        async def dropped() -> bool:
            return worker.stats["rate_limited"] >= 1_000

        await eventually(dropped)
        async with kiosk_peer(site, mqtt_broker, cloud_signer) as peer:
            deposit = peer.event(
                "parcel_deposited",
                {
                    "allocation_id": str(parcel["allocation_id"]),
                    "door": parcel["door_number"],
                    "barcode": parcel["package_id"],
                    "driver_id": "d",
                },
            )
            await peer.send_events([deposit])
            await peer.ack_through(1)

    assert (await site.allocation(parcel["allocation_id"]))["status"] == "deposited"
    # The worker reads every kiosk topic on the broker, so another test's flood may be logged
    # too: count this topic's lines. One per 10 s of flood, not one per message.
    lines = [r.getMessage() for r in caplog.records if "flood on a topic" in r.getMessage()]
    floods = [line for line in lines if junk_topic in line]
    allowed = 1 + int((time.monotonic() - started) // 10)
    assert 1 <= len(floods) <= allowed, floods


async def test_a_live_birth_is_not_answered_with_changes_since_the_sync_request_follows_it(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    # issue 14: a reconnecting kiosk publishes its birth, then its sync_request, on the same
    # connection. The worker answered both with the same changes, doubling the work of a fleet
    # coming back after a broker restart (each answer a query, a signature and a publish).
    await site.reserve()
    await site.reserve()
    await peer.expect(MessageType.CHANGES, lambda m: m.body.to_revision == 2)  # type: ignore[union-attr]
    peer.all_received.clear()
    birth = BirthBody(kiosk_id=site.kiosk_id, epoch=7, firmware="1.2.3", last_revision=0)
    await peer.send(Channel.KIOSK_PRESENCE, MessageType.BIRTH, birth)
    await peer.send(Channel.KIOSK_SYNC, MessageType.SYNC_REQUEST, SyncRequestBody(since_revision=0))
    # Handled in order per location: once this batch's ack is in, both were answered.
    await peer.send_events([peer.event("door_opened", _opened(1, 1))])
    await peer.ack_through(1)
    answers = [
        m
        for m in peer.all_received
        if isinstance(m.body, ChangesBody) and m.body.from_revision == 0
    ]
    assert len(answers) == 1
