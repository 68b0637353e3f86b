"""The service as it runs: migrations at start, background jobs."""

import asyncio
from datetime import timedelta

import httpx
import psycopg

from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.dispatch import LoggingSender
from cloud.server import bind, serve
from cloud.store import database as db
from shared.clock import ManualClock


async def test_migrations_apply_once(clean_db):
    assert await db.migrate(clean_db) == []  # the session fixture applied them already
    async with await psycopg.AsyncConnection.connect(clean_db) as conn:
        cur = await conn.execute("SELECT name FROM schema_migrations ORDER BY version")
        assert [r[0] for r in await cur.fetchall()] == [n for _, n, _ in db.migration_files()]


async def test_service_runs_lifecycle_and_notifications_by_itself(clean_db):
    clock = ManualClock()
    sender = LoggingSender()
    settings = CloudSettings(
        database_url=clean_db,
        admin_api_key="admin",
        lifecycle_interval_seconds=0.05,
        notification_interval_seconds=0.05,
    )
    app = create_app(settings, clock=clock, sender=sender)
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_ready(url: str) -> None:
        ready.set_result(url)

    task = asyncio.create_task(
        serve(app, bind("127.0.0.1", 0), on_ready=on_ready, stop=stop, log_level="warning")
    )
    base = await asyncio.wait_for(ready, 30)
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": "Bearer admin"}
        ) as admin:
            key = (
                await admin.post("/api/v1/admin/carriers", json={"carrier_id": "c", "name": "c"})
            ).json()["api_key"]
            await admin.post(
                "/api/v1/admin/locations",
                json={"location_id": "L", "name": "L", "address": "a", "latitude": 0,
                      "longitude": 0, "door_counts": {"small": 1},
                      "timezone": "Europe/Warsaw"},
            )  # fmt: skip
            carrier = {"Authorization": f"Bearer {key}"}
            a = (
                await admin.post(
                    "/api/v1/allocations",
                    headers=carrier,
                    json={"location_id": "L", "package_id": "P", "order_id": "O",
                          "customer_id": "C", "package_size": "small"},
                )
            ).json()  # fmt: skip
            await admin.post(
                f"/api/v1/allocations/{a['allocation_id']}/deposit",
                headers=carrier,
                json={"driver_id": "D", "scan_code": "P"},
            )

            async def kinds_sent_become(expected):
                for _ in range(200):
                    if [n.kind for n in sender.sent] == expected:
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError([n.kind for n in sender.sent])

            # Clock starts 2026-03-02 09:00 UTC; the parcel expires 2026-03-05 09:00 UTC.
            await kinds_sent_become(["pickup_code"])
            clock.advance(timedelta(days=1))
            await kinds_sent_become(["pickup_code", "reminder"])
            clock.advance(timedelta(days=1, hours=22, minutes=30))  # 08:30 in Warsaw, day 3
            await kinds_sent_become(["pickup_code", "reminder", "expires_today"])
            clock.advance(timedelta(hours=1, minutes=31))
            await kinds_sent_become(["pickup_code", "reminder", "expires_today", "expired"])
            got = (await admin.get(f"/api/v1/allocations/{a['allocation_id']}")).json()
            assert got["status"] == "expired"
    finally:
        stop.set()
        await task


async def test_the_health_check_asks_the_database(cloud):
    response = await cloud.anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
