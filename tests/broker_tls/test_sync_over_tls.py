"""The real cloud worker and kiosk daemon, each with its own certificate, through the fleet
broker: a parcel reserved in the cloud reaches the kiosk, its deposit reaches the cloud."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.store import database as db
from cloud.store.database import Pool
from cloud.sync.provisioning import provision_kiosk
from cloud.sync.worker import BrokerAddress, SyncWorker
from shared.broker_url import ClientTls
from shared.clock import SystemClock
from shared.signing import Signer
from tests.broker_tls.conftest import Fleet
from tests.sync_e2e.harness import (
    PICKUP_WINDOW,
    Cloud,
    Site,
    deposit_at_kiosk,
    eventually,
    make_cloud_location,
    now,
)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    await db.migrate(database_url)
    opened = await db.open_pool(database_url, min_size=1, max_size=6)
    try:
        yield opened
    finally:
        await opened.close()


async def test_kiosk_and_cloud_sync_through_the_mutual_tls_broker(
    fleet: Fleet, pool: Pool, database_url: str, tmp_path: Path
) -> None:
    signer = Signer.generate()
    cloud = Cloud(pool, database_url, signer, ("localhost", fleet.port))
    location_id, carrier_id = await make_cloud_location(cloud, "tls")
    folder = tmp_path / "kiosk"
    async with pool.connection() as conn:
        provisioned = await provision_kiosk(
            conn,
            location_id=location_id,
            kiosk_id="kiosk-tls",
            folder=folder,
            broker_url=f"mqtts://localhost:{fleet.port}",
            cloud_key=signer.verifier,
            now=now(),
            ca=fleet.ca,
        )
    text = provisioned.config_file.read_text(encoding="utf-8").replace(
        'backend = "serial"',
        'backend = "fake"\nopen_timeout_s = 0.5\n\n[doors.fake]\ndoors = 8\n\n'
        "[monitor]\npoll_interval_s = 0.05\n",
    )
    provisioned.config_file.write_text(
        text + "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\nack_timeout_s = 1\n"
    )
    fleet.restart()  # the new kiosk's rights are in the regenerated file
    files = fleet.clients["worker-1"]
    worker = SyncWorker(
        pool,
        database_url=database_url,
        broker=BrokerAddress(
            "localhost",
            fleet.port,
            tls=True,
            client_tls=ClientTls(fleet.ca.cert_file, files.cert_file, files.key_file),
        ),
        signer=signer,
        clock=SystemClock(),
        pickup_window=PICKUP_WINDOW,
        sweep_interval=1.0,
        backoff_first=0.1,
        backoff_longest=0.5,
    )
    task = asyncio.create_task(worker.run())
    secret = (folder / "code-secret").read_bytes().strip()
    site = Site(cloud, location_id, carrier_id, "kiosk-tls", folder, secret, Signer.generate())
    try:
        await asyncio.wait_for(worker.ready.wait(), 20)
        await site.start_kiosk()
        await eventually(lambda: site.connected)
        reserved = await site.reserve()

        await deposit_at_kiosk(site, str(reserved["package_id"]))

        async def deposited_in_the_cloud() -> bool:
            row = await site.cloud_allocation(reserved["allocation_id"])
            return bool(row["status"] == "deposited")

        await eventually(deposited_in_the_cloud)
        assert worker.stats["rejected"] == 0
    finally:
        await site.stop_kiosk()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_worker_whose_subscription_is_refused_backs_off(
    fleet: Fleet, pool: Pool, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Signed by the CA but not in the broker's ACL (issued after it was generated).
    files = fleet.ca.issue_worker(name="worker-unlisted", out=fleet.folder / "unlisted", now=now())
    worker = SyncWorker(
        pool,
        database_url=database_url,
        broker=BrokerAddress(
            "localhost",
            fleet.port,
            tls=True,
            client_tls=ClientTls(fleet.ca.cert_file, files.cert_file, files.key_file),
        ),
        signer=Signer.generate(),
        clock=SystemClock(),
        pickup_window=PICKUP_WINDOW,
        backoff_first=0.02,
        backoff_longest=5.0,
    )
    caplog.set_level(logging.INFO, logger="cloud.sync.worker")
    task = asyncio.create_task(worker.run())
    try:

        async def attempts() -> int:
            return sum("reconnecting in" in r.getMessage() for r in caplog.records)

        async def seven_attempts() -> bool:
            return await attempts() >= 7

        await eventually(seven_attempts)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    refusals = [r for r in caplog.records if "refused the subscription" in r.getMessage()]
    waits = [
        float(r.getMessage().split()[-2])
        for r in caplog.records
        if "reconnecting in" in r.getMessage()
    ]
    assert refusals
    assert not worker.ready.is_set()
    # The ceiling doubles at each refusal (0.02, 0.04, ... 1.28 s): without the backoff
    # growing, every wait would stay under 0.02 s and print as 0.0.
    assert max(waits) >= 0.1
