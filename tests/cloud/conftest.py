"""Fixtures for the cloud service: a migrated database and the real app over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.dispatch import LoggingSender
from cloud.server import bind, serve
from cloud.store import database as db
from cloud.store.database import Pool
from shared.clock import ManualClock

ADMIN_KEY = "test-admin-key"
TABLES = "notifications, returns, allocations, pickup_codes, doors, locations, carriers, operators"
TABLES += ", pickup_guesses"  # issue 10: counted pickup attempts
TABLES += ", webhook_sweeps"  # issue 10: how far the parcel.reserved.v1 sweep went


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await db.migrate(database_url)
    return database_url


@pytest.fixture
async def clean_db(migrated_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(migrated_url, autocommit=True) as conn:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return migrated_url


@pytest.fixture
async def pool(clean_db: str) -> AsyncIterator[Pool]:
    p = await db.open_pool(clean_db, min_size=1, max_size=10)
    yield p
    await p.close()


@dataclass
class Cloud:
    """The running service as a test sees it."""

    base_url: str
    clock: ManualClock
    pool: Pool
    sender: LoggingSender
    admin: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client with this API key, closed when the test ends."""
        headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
        client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    async def create_carrier(self, carrier_id: str = "acme", **extra: Any) -> httpx.AsyncClient:
        r = await self.admin.post(
            "/api/v1/admin/carriers", json={"carrier_id": carrier_id, "name": carrier_id, **extra}
        )
        assert r.status_code == 201, r.text
        return self.client(r.json()["api_key"])

    async def create_location(
        self,
        location_id: str = "LOC-1",
        *,
        counts: dict[str, int] | None = None,
        latitude: float = 52.23,
        longitude: float = 21.01,
        timezone: str = "Europe/Warsaw",
        **extra: Any,
    ) -> dict[str, Any]:
        r = await self.admin.post(
            "/api/v1/admin/locations",
            json={
                "location_id": location_id,
                "name": location_id,
                "address": f"{location_id} street 1",
                "latitude": latitude,
                "longitude": longitude,
                "timezone": timezone,
                "door_counts": counts if counts is not None else {"small": 2, "medium": 2},
                **extra,
            },
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def cloud_settings_extra() -> dict[str, Any]:
    """More settings for the `cloud` fixture's service; a test parametrizes it to change them."""
    return {}


@pytest.fixture
async def cloud(clean_db: str, cloud_settings_extra: dict[str, Any]) -> AsyncIterator[Cloud]:
    settings = CloudSettings(
        database_url=clean_db,
        admin_api_key=ADMIN_KEY,
        run_background_jobs=False,
        db_pool_max=40,
        max_body_bytes=16 * 1024,
        **cloud_settings_extra,
    )
    clock = ManualClock()
    sender = LoggingSender()
    app = create_app(settings, clock=clock, sender=sender)
    sock = bind("127.0.0.1", 0)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def on_ready(url: str) -> None:
        ready.set_result(url)

    task = asyncio.create_task(serve(app, sock, on_ready=on_ready, stop=stop, log_level="warning"))
    base_url = await asyncio.wait_for(ready, 30)
    admin = httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    )
    anonymous = httpx.AsyncClient(base_url=base_url, timeout=30)
    service = Cloud(
        base_url=base_url,
        clock=clock,
        pool=app.state.services.pool,
        sender=sender,
        admin=admin,
        anonymous=anonymous,
    )
    try:
        yield service
    finally:
        for client in [admin, anonymous, *service.clients]:
            await client.aclose()
        stop.set()
        await task
