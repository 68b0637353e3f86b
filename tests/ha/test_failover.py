"""PostgreSQL failover under load: Patroni with etcd (Debian's packages), a primary and a
synchronous standby, the cloud service on the multi-host connection string.

The primary's machine dies (kill -9 of its Patroni and PostgreSQL) while a carrier allocates:
the standby is promoted, the service carries on without a restart, answering 503 with
Retry-After in the gap and never a 500, and no allocation acknowledged to the carrier is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.server import bind, serve
from deploy.ha.cluster import RUN_AS, Cluster

ADMIN = "ha-admin"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # Not under pytest's tmp_path: PostgreSQL runs as the postgres user, who cannot enter it.
    folder = Path(tempfile.mkdtemp(prefix="locker-ha-"))
    shutil.chown(folder, RUN_AS)
    running = Cluster.plan(folder)
    try:
        running.up()
        yield running
    finally:
        running.down()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def cloud_service(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = CloudSettings(
        database_url=database_url,
        admin_api_key=ADMIN,
        run_background_jobs=False,
        db_pool_min=1,
        db_pool_max=8,
        db_pool_timeout_seconds=2,
    )
    app = create_app(settings)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def on_ready(url: str) -> None:
        ready.set_result(url)

    task = asyncio.create_task(
        serve(app, bind("127.0.0.1", 0), on_ready=on_ready, stop=stop, log_level="warning")
    )
    base = await asyncio.wait_for(ready, 60)
    client = httpx.AsyncClient(base_url=base, timeout=30)
    try:
        yield client
    finally:
        await client.aclose()
        stop.set()
        await task


async def test_a_primary_lost_under_load_loses_no_acknowledged_allocation(
    cluster: Cluster,
) -> None:
    async with cloud_service(cluster.database_url) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        r = await client.post(
            "/api/v1/admin/carriers", json={"carrier_id": "acme", "name": "Acme"}, headers=admin
        )
        assert r.status_code == 201, r.text
        carrier = {"Authorization": f"Bearer {r.json()['api_key']}"}
        r = await client.post(
            "/api/v1/admin/locations",
            headers=admin,
            json={
                "location_id": "HA-1",
                "name": "HA",
                "address": "Street 1",
                "latitude": 52.2,
                "longitude": 21.0,
                "timezone": "Europe/Warsaw",
                "door_counts": {"small": 400},
            },
        )
        assert r.status_code == 201, r.text

        acknowledged: set[str] = set()
        statuses: list[int] = []
        fault_at: float | None = None
        recovered_after: float | None = None
        n = 0

        async def allocate() -> None:
            nonlocal n, recovered_after
            n += 1
            package = f"P{n}"
            r = await client.post(
                "/api/v1/allocations",
                headers=carrier,
                json={
                    "location_id": "HA-1",
                    "package_id": package,
                    "order_id": f"O{n}",
                    "customer_id": f"c{n}",
                    "package_size": "small",
                },
            )
            statuses.append(r.status_code)
            if r.status_code in (200, 201):
                acknowledged.add(package)
                if fault_at is not None and recovered_after is None:
                    recovered_after = time.monotonic() - fault_at
            else:
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"]
                assert r.json()["error"]["code"] == "database_unavailable"

        for _ in range(20):
            await allocate()
        old_primary = cluster.primary()
        assert old_primary is not None
        cluster.kill_node(old_primary)  # the primary's machine is gone
        fault_at = time.monotonic()
        deadline = fault_at + 90
        while recovered_after is None or len(acknowledged) < 40:
            assert time.monotonic() < deadline, f"no recovery in 90 s: {statuses[-10:]}"
            await allocate()
            await asyncio.sleep(0.05)

        new_primary = cluster.primary()
        assert new_primary is not None
        assert new_primary != old_primary
        async with await psycopg.AsyncConnection.connect(cluster.node_url(new_primary)) as conn:
            cur = await conn.execute("SELECT package_id FROM allocations")
            stored = {row[0] for row in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT count(*) FROM (SELECT door_id FROM allocations"
                " WHERE status IN ('reserved', 'deposited', 'expired')"
                " GROUP BY door_id HAVING count(*) > 1) twice"
            )
            doubled = (await cur.fetchone() or (None,))[0]
    lost = acknowledged - stored
    assert lost == set(), f"acknowledged and lost: {sorted(lost)}"
    assert doubled == 0
    assert 500 not in statuses
    print(
        f"failover: first allocation {recovered_after:.1f} s after the fault;"
        f" {statuses.count(503)} requests answered 503 meanwhile; {len(acknowledged)}"
        " acknowledged, none lost"
    )
