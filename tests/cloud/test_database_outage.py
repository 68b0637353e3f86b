"""The database away for a moment: the API answers 503 with Retry-After (never a 500), writes
nothing half, and recovers by itself; a multi-host connection string finds the writable host.

PostgreSQL is reached through a TCP relay the test can cut (an outage, a failover's gap), as a
network cut or a dead primary looks to the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.embedded_broker import free_port
from cloud.server import bind, serve
from tests.kiosk_sync.conftest import TcpProxy

ADMIN = "outage-admin"


def _via(url: str, host: str, port: int | str) -> str:
    params = conninfo_to_dict(url)
    params["host"], params["port"] = host, str(port)
    return make_conninfo(**params)


@contextlib.asynccontextmanager
async def service(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = CloudSettings(
        database_url=database_url,
        admin_api_key=ADMIN,
        run_background_jobs=False,
        db_pool_min=1,
        db_pool_max=4,
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
    base = await asyncio.wait_for(ready, 30)
    client = httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )
    try:
        yield client
    finally:
        await client.aclose()
        stop.set()
        await task


async def _location(client: httpx.AsyncClient, location_id: str) -> httpx.Response:
    return await client.post(
        "/api/v1/admin/locations",
        json={
            "location_id": location_id,
            "name": location_id,
            "address": "Street 1",
            "latitude": 52.2,
            "longitude": 21.0,
            "timezone": "Europe/Warsaw",
            "door_counts": {"small": 2},
        },
    )


async def _count(url: str, location_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM doors WHERE location_id = %s", (location_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_an_outage_is_503_with_retry_after_and_the_service_recovers_alone(
    clean_db: str,
) -> None:
    params: dict[str, Any] = conninfo_to_dict(clean_db)
    proxy = TcpProxy(params.get("host") or "127.0.0.1", int(params.get("port") or 5432))
    await proxy.start()
    try:
        async with service(_via(clean_db, "127.0.0.1", proxy.port)) as client:
            assert (await _location(client, "BEFORE")).status_code == 201

            await proxy.kill()  # the primary is gone
            for _ in range(3):
                r = await _location(client, "DURING")
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "5"
                assert r.json()["error"]["code"] == "database_unavailable"
            assert (await client.get("/healthz")).status_code == 503
            assert await _count(clean_db, "DURING") == 0  # nothing half-written

            await proxy.start()  # the database answers again (same address)
            # The pool reconnects on its own (with its backoff); until then, still 503s.
            deadline = asyncio.get_running_loop().time() + 30
            while (r := await _location(client, "AFTER")).status_code == 503:
                assert asyncio.get_running_loop().time() < deadline, "no recovery in 30 s"
                await asyncio.sleep(0.5)
            assert r.status_code == 201, r.text
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await proxy.kill()
    assert await _count(clean_db, "AFTER") == 2


async def test_a_multi_host_connection_string_takes_the_host_that_answers(
    clean_db: str,
) -> None:
    params: dict[str, Any] = conninfo_to_dict(clean_db)
    host = params.get("host") or "127.0.0.1"
    port = params.get("port") or "5432"
    dead = free_port()  # a primary that is gone: nothing listens there
    url = _via(clean_db, f"127.0.0.1,{host}", f"{dead},{port}") + " target_session_attrs=read-write"
    async with service(url) as client:
        assert (await _location(client, "MULTI")).status_code == 201
    assert await _count(clean_db, "MULTI") == 2


@pytest.mark.parametrize("attrs", ["read-write"])
async def test_a_standby_is_never_taken_for_writes(clean_db: str, attrs: str) -> None:
    # Every server here is a primary, so target_session_attrs=standby finds none: libpq refuses
    # the connection rather than hand back a server of the wrong kind.
    with pytest.raises(psycopg.OperationalError):
        await psycopg.AsyncConnection.connect(clean_db + " target_session_attrs=standby")
    async with await psycopg.AsyncConnection.connect(
        clean_db + f" target_session_attrs={attrs}"
    ) as conn:
        cur = await conn.execute("SELECT pg_is_in_recovery()")
        assert await cur.fetchone() == (False,)
