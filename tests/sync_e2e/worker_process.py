"""A cloud sync worker as a process of its own, for the kill -9 test.

``python -m tests.sync_e2e.worker_process DATABASE_URL HOST PORT CLOUD_KEY_FILE`` prints
``ready`` once connected and subscribed, then serves until killed.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from cloud.store import database as db
from cloud.sync.keys import load_cloud_signer
from cloud.sync.worker import BrokerAddress, SyncWorker
from shared.clock import SystemClock
from tests.sync_e2e.harness import PICKUP_WINDOW


async def main(url: str, host: str, port: int, key_file: str) -> None:
    pool = await db.open_pool(url, min_size=1, max_size=8)
    worker = SyncWorker(
        pool,
        database_url=url,
        broker=BrokerAddress(host, port),
        signer=load_cloud_signer(key_file, create=False),
        clock=SystemClock(),
        pickup_window=PICKUP_WINDOW,
        shared_subscription=False,
        sweep_interval=1.0,
        backoff_first=0.1,
        backoff_longest=1.0,
    )
    task = asyncio.create_task(worker.run())
    await worker.ready.wait()
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
