"""Fixtures of the end-to-end sync tests: the cloud (session database, signing key, a pool) and
a site per test (location, provisioned kiosk), torn down with nothing left on the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.store import database as db
from shared.signing import Signer
from tests import socket_guard

from .harness import Cloud, Site, make_site, running_site


@pytest.fixture(autouse=True)
async def _no_leaked_sockets() -> AsyncIterator[None]:
    """Every test here fails when it leaves a socket open (`tests.socket_guard`)."""
    async with socket_guard.no_socket_left():
        yield


@pytest.fixture(scope="session")
async def e2e_db_url(database_url: str) -> str:
    await db.migrate(database_url)
    return database_url


@pytest.fixture(scope="session")
def cloud_signer() -> Signer:
    return Signer.generate()


@pytest.fixture
async def cloud(
    e2e_db_url: str, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer
) -> AsyncIterator[Cloud]:
    pool = await db.open_pool(e2e_db_url, min_size=1, max_size=12)
    host, port, _ = mqtt_broker
    built = Cloud(pool, e2e_db_url, cloud_signer, (host, port))
    try:
        yield built
    finally:
        await built.stop_workers()
        await pool.close()


@pytest.fixture
async def site(cloud: Cloud, tmp_path: Path) -> AsyncIterator[Site]:
    """A site whose kiosk reaches the broker through a proxy the test can kill."""
    async with running_site(await make_site(cloud, tmp_path / "kiosk", proxy=True)) as running:
        yield running
