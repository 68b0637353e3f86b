"""Fixtures for the cloud side of the sync: a migrated database, a location per test, and a
kiosk registered there with its own keys.

Each test gets its own location, carrier and kiosk ids, so tests share the session's database
and broker without seeing each other's rows or topics.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.rows import DictRow

from cloud import allocation, db, doors, locations
from cloud.allocation import AllocationRequest
from cloud.carriers import create_carrier
from cloud.db import Pool
from cloud.doors import DoorSpec
from cloud.sync.keys import register_kiosk
from shared.signing import Signer
from shared.sizes import Size

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
            row, created = await allocation.reserve(
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
