"""Fixtures for the cloud side of the sync: a migrated database, a location per test, and a
kiosk registered there with its own keys.

Each test gets its own location, carrier and kiosk ids, so tests share the session's database
and broker without seeing each other's rows or topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
from psycopg.rows import DictRow

from cloud import doors, locations
from cloud.carriers import create_carrier
from cloud.doors import DoorSpec
from cloud.parcels.requests import AllocationRequest
from cloud.store import database as db
from cloud.store.database import Pool
from cloud.sync.keys import register_kiosk
from cloud.sync.worker import TOPIC_LIMIT, BrokerAddress, SyncWorker
from shared.clock import SystemClock
from shared.flood_gate import RateLimit
from shared.protocol import (
    CLOUD_SENDER,
    AckBody,
    Channel,
    EventRecord,
    EventsBody,
    Message,
    MessageType,
    kiosk_subscription,
    open_message,
    seal,
    topic,
)
from shared.signing import Signer
from shared.sizes import Size
from tests import parcel_ops, socket_guard

HOLD = timedelta(hours=24)
WINDOW = timedelta(days=3)


@pytest.fixture(scope="session")
async def sync_db_url(database_url: str) -> str:
    await db.migrate(database_url)
    return database_url


@pytest.fixture
async def pool(sync_db_url: str) -> AsyncIterator[Pool]:
    p = await db.open_pool(sync_db_url, min_size=1, max_size=12)
    yield p
    await p.close()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Site:
    """One location with doors 1-3 small, 4-5 medium, one carrier, and its kiosk's identity."""

    pool: Pool
    location_id: str
    carrier_id: str
    kiosk_id: str
    kiosk_signer: Signer = field(repr=False)
    code_secret: bytes = field(repr=False)
    registered: bool = False

    async def register_kiosk(self) -> None:
        async with self.pool.connection() as conn:
            await register_kiosk(
                conn,
                kiosk_id=self.kiosk_id,
                location_id=self.location_id,
                public_key=self.kiosk_signer.verifier.public_base64(),
                code_secret=self.code_secret,
                now=now(),
            )
        self.registered = True

    async def reserve(
        self, package_id: str | None = None, size: Size = Size.SMALL, customer: str | None = None
    ) -> DictRow:
        package = package_id or f"PKG-{uuid.uuid4().hex[:8]}"
        async with self.pool.connection() as conn:
            row, created = await parcel_ops.reserve(
                conn,
                carrier_id=self.carrier_id,
                request=AllocationRequest(
                    location_id=self.location_id,
                    package_id=package,
                    order_id=f"ORD-{package}",
                    customer_id=customer or f"cust-{package}",
                    size=size,
                ),
                now=now(),
                hold=HOLD,
            )
        assert created
        return row

    async def revision(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT revision FROM locations WHERE location_id = %s", (self.location_id,)
            )
            row = await cur.fetchone()
        assert row is not None
        value: int = row["revision"]
        return value

    async def changes(self) -> list[DictRow]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT revision, change FROM location_changes WHERE location_id = %s"
                " ORDER BY revision",
                (self.location_id,),
            )
            return await cur.fetchall()

    async def allocation(self, allocation_id: uuid.UUID | str) -> DictRow:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT a.*, d.door_number, d.status AS door_status FROM allocations a"
                " JOIN doors d ON d.door_id = a.door_id WHERE a.allocation_id = %s",
                (allocation_id,),
            )
            row = await cur.fetchone()
        assert row is not None
        return row

    async def door(self, number: int) -> DictRow:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM doors WHERE location_id = %s AND door_number = %s",
                (self.location_id, number),
            )
            row = await cur.fetchone()
        assert row is not None
        return row


async def make_site(pool: Pool, *, register: bool = True) -> Site:
    tag = uuid.uuid4().hex[:10]
    site = Site(
        pool=pool,
        location_id=f"loc-{tag}",
        carrier_id=f"carrier-{tag}",
        kiosk_id=f"kiosk-{tag}",
        kiosk_signer=Signer.generate(),
        code_secret=secrets.token_bytes(32),
    )
    async with pool.connection() as conn, conn.transaction():
        await create_carrier(
            conn, carrier_id=site.carrier_id, name=site.carrier_id, webhook_url=None, now=now()
        )
        await locations.create_location(
            conn,
            location_id=site.location_id,
            name=site.location_id,
            address="Test street 1",
            latitude=52.2,
            longitude=21.0,
            timezone="Europe/Warsaw",
            operating_hours=None,
            now=now(),
        )
        await doors.add_doors(
            conn,
            site.location_id,
            [DoorSpec(n, Size.SMALL) for n in (1, 2, 3)]
            + [DoorSpec(n, Size.MEDIUM) for n in (4, 5)],
            now(),
        )
    if register:
        await site.register_kiosk()
    return site


@pytest.fixture
async def site(pool: Pool) -> Site:
    return await make_site(pool)


# The broker side: a cloud worker, and a signed kiosk peer that plays the kiosk over the broker.


@pytest.fixture(scope="session")
def cloud_signer() -> Signer:
    return Signer.generate()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Waits until ``check()`` is true (the broker and the worker take their time)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


TEST_SHARE_GROUP = f"locker-cloud-test-{uuid.uuid4().hex[:8]}"
"""This test run's workers' shared-subscription group: another run on the same broker (a second
developer, a benchmark) subscribes in its own group and so takes none of this run's messages."""


@contextlib.asynccontextmanager
async def running_worker(
    pool: Pool,
    url: str,
    broker: tuple[str, int, bool],
    signer: Signer,
    *,
    sweep_interval: float = 1.0,
    share_group: str = TEST_SHARE_GROUP,
    key_cache_s: float = 60.0,
    key_refresh_s: float = 5.0,
    topic_limit: RateLimit = TOPIC_LIMIT,
) -> AsyncIterator[SyncWorker]:
    host, port, shared = broker
    worker = SyncWorker(
        pool,
        database_url=url,
        broker=BrokerAddress(host, port),
        signer=signer,
        clock=SystemClock(),
        pickup_window=WINDOW,
        shared_subscription=shared,
        share_group=share_group,
        sweep_interval=sweep_interval,
        key_cache_s=key_cache_s,
        key_refresh_s=key_refresh_s,
        topic_limit=topic_limit,
    )
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 20)
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def worker(
    pool: Pool, sync_db_url: str, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer
) -> AsyncIterator[SyncWorker]:
    async with running_worker(pool, sync_db_url, mqtt_broker, cloud_signer) as running:
        yield running


class KioskPeer:
    """A kiosk as the broker sees it: signs with its key, reads the cloud's signed messages."""

    def __init__(self, site: Site, client: aiomqtt.Client, cloud: Signer) -> None:
        self.site = site
        self.client = client
        self._cloud = cloud.verifier
        self.received: asyncio.Queue[Message] = asyncio.Queue()
        self.all_received: list[Message] = []
        self.sequence = 0
        self.events: list[EventRecord] = []

    def seal(
        self,
        kind: MessageType,
        body: Any,
        *,
        signer: Signer | None = None,
        at: datetime | None = None,
        location_id: str | None = None,
        sender: str | None = None,
    ) -> bytes:
        return seal(
            signer or self.site.kiosk_signer,
            kind,
            location_id=location_id or self.site.location_id,
            sender=sender or self.site.kiosk_id,
            body=body,
            now=at or now(),
        )

    async def send(self, channel: Channel, kind: MessageType, body: Any, **kw: Any) -> None:
        payload = self.seal(kind, body, **kw)
        retain = channel is Channel.KIOSK_PRESENCE
        await self.client.publish(
            topic(self.site.location_id, channel), payload, qos=1, retain=retain
        )

    def event(self, kind: str, payload: dict[str, Any], version: int = 1) -> EventRecord:
        """Adds an event to the peer's outbox (``version``: its payload schema's)."""
        self.sequence += 1
        record = EventRecord(
            sequence=self.sequence,
            event_id=uuid.uuid4(),
            type=kind,
            version=version,
            created_at=now(),
            payload=payload,
        )
        self.events.append(record)
        return record

    async def send_events(self, events: list[EventRecord]) -> None:
        body = EventsBody(kiosk_id=self.site.kiosk_id, events=events)
        await self.send(Channel.KIOSK_EVENTS, MessageType.EVENTS, body)

    async def expect(
        self,
        kind: MessageType,
        where: Callable[[Message], bool] = lambda _: True,
        within: float = 20,
    ) -> Message:
        """The next cloud message of ``kind`` that satisfies ``where`` (others are skipped)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {kind} message in time")
            message = await asyncio.wait_for(self.received.get(), left)
            if message.type is kind and where(message):
                return message

    async def ack_through(self, sequence: int) -> AckBody:
        message = await self.expect(
            MessageType.ACK,
            lambda m: isinstance(m.body, AckBody) and m.body.through_sequence >= sequence,
        )
        assert isinstance(message.body, AckBody)
        return message.body

    async def _read(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            opened = open_message(
                message.payload,
                message.topic.value,
                keys=lambda _loc, sender: self._cloud if sender == CLOUD_SENDER else None,
                now=now(),
            )
            self.all_received.append(opened)
            self.received.put_nowait(opened)


@contextlib.asynccontextmanager
async def kiosk_peer(
    site: Site, broker: tuple[str, int, bool], cloud: Signer
) -> AsyncIterator[KioskPeer]:
    host, port, _ = broker
    client = aiomqtt.Client(host, port, identifier=f"{site.kiosk_id}-{uuid.uuid4().hex[:6]}")
    async with client:
        await client.subscribe(kiosk_subscription(site.location_id), qos=1)
        peer = KioskPeer(site, client, cloud)
        reader = asyncio.create_task(peer._read())
        try:
            yield peer
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            # Leave no retained presence behind on the shared broker.
            await client.publish(
                topic(site.location_id, Channel.KIOSK_PRESENCE), b"", qos=1, retain=True
            )


@pytest.fixture
async def peer(
    site: Site, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer
) -> AsyncIterator[KioskPeer]:
    async with kiosk_peer(site, mqtt_broker, cloud_signer) as running:
        yield running


@pytest.fixture(autouse=True)
async def _no_leaked_sockets() -> AsyncIterator[None]:
    """Every test here fails when it leaves a socket open (`tests.socket_guard`)."""
    async with socket_guard.no_socket_left():
        yield
