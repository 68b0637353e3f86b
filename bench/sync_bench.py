"""Sync benchmark: a fleet of kiosks against one broker and one cloud sync worker.

What is real: PostgreSQL (the allocation functions the API calls, the change log, cursors),
the MQTT broker (Mosquitto), the cloud's `SyncWorker` (in a subprocess of its own, plain
subscription), and each kiosk's `KioskSync` with its own SQLite file store (in a temporary
folder), its own MQTT connection and its own Ed25519 key. What is simulated: the kiosks run
together in this one process (one asyncio loop), with fake door banks and no door monitor;
kiosk events are written straight into each outbox (``door_closed``) instead of coming from
flows.

Figures (last line: one JSON object):

- ``baseline_rtt_ms``: a bare publish/subscribe round trip through the same broker (QoS 1);
- ``alloc_to_kiosk_ms``: from the cloud's commit of a reservation to the kiosk's commit of the
  change (the code is usable there), p50/p99, allocations spread over the fleet;
- ``events_per_s``: outbox events committed at the kiosks until all are applied in the cloud and
  acknowledged back at the kiosks;
- ``catch_up_s``: a kiosk offline while 1,000 changes (500 reservations and their cancels)
  happen in the cloud and 1,000 events in its outbox, from reconnection until both are synced.

Usage: ``python bench/sync_bench.py --database-url URL [--mqtt-url mqtt://127.0.0.1:1883]
[--kiosks 200]`` (the database is migrated and written to: use a scratch one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from cloud import doors, locations
from cloud.carriers import create_carrier
from cloud.doors import DoorSpec
from cloud.parcels import finish
from cloud.parcels import reserve as reserving
from cloud.parcels.requests import AllocationRequest
from cloud.store import allocations
from cloud.store import database as db
from cloud.store.transaction import unit
from cloud.sync.keys import load_cloud_signer, register_kiosk
from cloud.sync.worker import BrokerAddress, SyncWorker
from kiosk.config import SyncConfig
from kiosk.flows.context import FlowContext
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import CodeHasher, KioskIdentity, Store, changes, outbox
from kiosk.store import doors as kiosk_doors
from kiosk.sync.client import KioskSync
from shared.clock import SystemClock
from shared.clock import SystemClock as KioskClock
from shared.events import DoorClosed
from shared.protocol import ChangesBody, Message
from shared.signing import Signer
from shared.sizes import Size

LAYOUT = dict.fromkeys(range(1, 9), Size.SMALL)
HOLD = timedelta(hours=24)


def now() -> datetime:
    return datetime.now(UTC)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class TimedSync(KioskSync):
    """`KioskSync` noting when each allocation's change was committed here."""

    applied_at: dict[str, float]

    async def _dispatch(self, client: aiomqtt.Client, message: Message, at: datetime) -> None:
        await super()._dispatch(client, message, at)
        if isinstance(message.body, ChangesBody):
            stamp = time.perf_counter()
            for change in message.body.changes:
                state = getattr(change, "allocation", None)
                if state is not None:
                    self.applied_at.setdefault(f"{state.allocation_id}:{state.status}", stamp)


class Kiosk:
    def __init__(self, folder: Path, location_id: str, kiosk_id: str, host: str, port: int):
        self.location_id, self.kiosk_id = location_id, kiosk_id
        self.signer = Signer.generate()
        self.secret = secrets.token_bytes(32)
        self.store = Store.open(
            folder / f"{kiosk_id}.db", CodeHasher(self.secret), KioskIdentity(location_id, kiosk_id)
        )
        with self.store.transaction() as conn:
            kiosk_doors.sync_layout(conn, LAYOUT, now())
        self.host, self.port = host, port
        self.sync: TimedSync | None = None
        self.task: asyncio.Task[None] | None = None
        self.applied_at: dict[str, float] = {}

    def start(self, cloud_key: Signer) -> None:
        config = SyncConfig(
            broker_host=self.host,
            broker_port=self.port,
            cloud_key=cloud_key.verifier,
            private_key_file=Path("unused.pem"),
            signer=self.signer,
            reconnect_min_s=0.2,
            reconnect_max_s=2.0,
            ack_timeout_s=5.0,
            outbox_check_s=1.0,
        )
        ctx = FlowContext(self.store, FakeDoorBank(sorted(LAYOUT)), KioskClock())
        self.sync = TimedSync(ctx, config)
        self.sync.applied_at = self.applied_at
        self.task = asyncio.create_task(self.sync.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def add_events(self, count: int) -> None:
        with self.store.transaction() as conn:
            for i in range(count):
                outbox.append_event(conn, DoorClosed(door=1 + i % 8, occupied=False), now())
        if self.sync is not None:
            self.sync.outbox_changed.set()

    def unacked(self) -> int:
        value: int = self.store.db.execute(
            "SELECT count(*) FROM outbox WHERE acked = 0"
        ).fetchone()[0]
        return value

    def revision(self) -> int:
        return changes.last_revision(self.store.db)


async def cancel(conn: db.Conn, allocation_id: uuid.UUID) -> None:
    """Cancels a reservation, as its carrier would (``cloud.parcels.finish.cancel``)."""
    async with unit(conn, now()) as work:
        found = await allocations.lock(conn, allocation_id)
        assert found is not None
        await finish.cancel(work, found, "bench")


async def wait_until(check: Any, within: float, step: float = 0.02) -> None:
    deadline = time.perf_counter() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


async def baseline(host: str, port: int, rounds: int = 300) -> list[float]:
    """Bare QoS 1 publish → subscriber receipt through the broker, one at a time."""
    name = f"bench/{uuid.uuid4().hex}"
    times: list[float] = []
    async with (
        aiomqtt.Client(host, port, identifier=f"bench-sub-{uuid.uuid4().hex[:8]}") as sub,
        aiomqtt.Client(host, port, identifier=f"bench-pub-{uuid.uuid4().hex[:8]}") as pub,
    ):
        await sub.subscribe(name, qos=1)
        messages = sub.messages
        for i in range(rounds):
            start = time.perf_counter()
            await pub.publish(name, str(i).encode(), qos=1)
            async for _ in messages:
                break
            times.append((time.perf_counter() - start) * 1000)
    return times


async def setup_cloud(pool: db.Pool, kiosks: list[Kiosk], carrier: str) -> None:
    async with pool.connection() as conn, conn.transaction():
        await create_carrier(conn, carrier_id=carrier, name=carrier, webhook_url=None, now=now())
    for kiosk in kiosks:
        async with pool.connection() as conn, conn.transaction():
            await locations.create_location(
                conn,
                location_id=kiosk.location_id,
                name=kiosk.location_id,
                address="Bench street 1",
                latitude=52.2,
                longitude=21.0,
                timezone="Europe/Warsaw",
                operating_hours=None,
                now=now(),
            )
            await doors.add_doors(
                conn, kiosk.location_id, [DoorSpec(n, s) for n, s in LAYOUT.items()], now()
            )
            await register_kiosk(
                conn,
                kiosk_id=kiosk.kiosk_id,
                location_id=kiosk.location_id,
                public_key=kiosk.signer.verifier.public_base64(),
                code_secret=kiosk.secret,
                now=now(),
            )


async def reserve(pool: db.Pool, carrier: str, location_id: str) -> tuple[str, float]:
    package = f"PKG-{uuid.uuid4().hex[:12]}"
    async with pool.connection() as conn:
        row, _ = await reserving.reserve(
            conn,
            carrier_id=carrier,
            request=AllocationRequest(
                location_id=location_id,
                package_id=package,
                order_id=package,
                customer_id=f"c-{package}",
                size=Size.SMALL,
            ),
            now=now(),
            hold=HOLD,
        )
    return str(row.allocation_id), time.perf_counter()


ROOT = Path(__file__).resolve().parent.parent


def spawn_worker(url: str, host: str, port: int, key_file: Path) -> subprocess.Popen[bytes]:
    """The cloud sync worker, in a process of its own (this file with ``--worker``)."""
    return subprocess.Popen(  # noqa: S603 (our own interpreter and file)
        [sys.executable, __file__, "--worker", url, host, str(port), str(key_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url
    await db.migrate(url)
    parts = args.mqtt_url.split("://", 1)[1].split(":")
    host, port = parts[0], int(parts[1]) if len(parts) > 1 else 1883
    tag = uuid.uuid4().hex[:8]
    carrier = f"bench-carrier-{tag}"
    folder = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    key_file = folder / "cloud-key.pem"
    cloud_signer = Signer.generate()
    key_file.write_bytes(cloud_signer.private_pem())
    pool = await db.open_pool(url, min_size=2, max_size=10)
    fleet = [
        Kiosk(folder, f"bl-{tag}-{i:03d}", f"bk-{tag}-{i:03d}", host, port)
        for i in range(args.kiosks)
    ]
    await setup_cloud(pool, fleet, carrier)

    base = await baseline(host, port)

    worker = spawn_worker(url, host, port, key_file)
    try:
        assert worker.stdout is not None
        line = await asyncio.to_thread(worker.stdout.readline)
        assert line.startswith(b"ready"), line
        connect_start = time.perf_counter()
        for kiosk in fleet:
            kiosk.start(cloud_signer)
        await wait_until(lambda: all(k.sync and k.sync.status.connected for k in fleet), 120)
        connect_s = time.perf_counter() - connect_start

        # 1. Allocation to kiosk: two reservations per kiosk, 20 per second, across the fleet.
        committed: dict[str, tuple[Kiosk, float]] = {}
        for rnd in range(2):
            for kiosk in fleet:
                allocation_id, at = await reserve(pool, carrier, kiosk.location_id)
                committed[allocation_id] = (kiosk, at)
                await asyncio.sleep(0.05 if rnd == 0 else 0.0)
        await wait_until(
            lambda: all(f"{a}:reserved" in k.applied_at for a, (k, _) in committed.items()), 120
        )
        latencies = [
            (k.applied_at[f"{a}:reserved"] - at) * 1000 for a, (k, at) in committed.items()
        ]

        # 2. Events end to end: every kiosk commits a burst of events at once.
        per_kiosk = args.events_per_kiosk
        start = time.perf_counter()
        for kiosk in fleet:
            kiosk.add_events(per_kiosk)
        await wait_until(lambda: all(k.unacked() == 0 for k in fleet), 300, step=0.05)
        events_elapsed = time.perf_counter() - start
        events_total = per_kiosk * len(fleet)

        # 3. Catch-up: one kiosk offline while 1,000 changes and 1,000 events happen.
        late = fleet[0]
        await late.stop()
        for _ in range(500):
            allocation_id, _ = await reserve(pool, carrier, late.location_id)
            async with pool.connection() as conn:
                await cancel(conn, uuid.UUID(allocation_id))
        late.add_events(1000)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT revision FROM locations WHERE location_id = %s", (late.location_id,)
            )
            row = await cur.fetchone()
        assert row is not None
        target = row["revision"]
        start = time.perf_counter()
        late.start(cloud_signer)
        await wait_until(lambda: late.revision() == target and late.unacked() == 0, 120)
        catch_up = time.perf_counter() - start
    finally:
        for kiosk in fleet:
            await kiosk.stop()
            kiosk.store.close()
        worker.kill()
        worker.wait()
        await pool.close()
        # Leave no persistent sessions or retained presence behind on the broker.
        with contextlib.suppress(aiomqtt.MqttError):
            async with aiomqtt.Client(host, port, identifier=f"bench-clean-{tag}") as cleaner:
                for kiosk in fleet:
                    await cleaner.publish(
                        f"locker/v1/{kiosk.location_id}/kiosk/presence", b"", qos=1, retain=True
                    )
        for kiosk in fleet:
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    host, port, identifier=kiosk.kiosk_id, clean_session=True
                ):
                    pass
    return {
        "bench": "sync",
        "kiosks": len(fleet),
        "fleet_connect_s": round(connect_s, 2),
        "baseline_rtt_ms": {"p50": round(pct(base, 0.5), 2), "p99": round(pct(base, 0.99), 2)},
        "alloc_to_kiosk_ms": {
            "n": len(latencies),
            "p50": round(pct(latencies, 0.5), 1),
            "p99": round(pct(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "events": events_total,
        "events_per_s": round(events_total / events_elapsed, 1),
        "catch_up_s": round(catch_up, 2),
        "catch_up_changes": 1000,
        "catch_up_events": 1000,
        "goals_met": {
            "p99_alloc_under_500ms": pct(latencies, 0.99) < 500,
            "catch_up_under_2s": catch_up < 2.0,
        },
    }


async def worker_main(url: str, host: str, port: int, key_file: str) -> None:
    pool = await db.open_pool(url, min_size=2, max_size=10)
    worker = SyncWorker(
        pool,
        database_url=url,
        broker=BrokerAddress(host, port),
        signer=load_cloud_signer(key_file, create=False),
        clock=SystemClock(),
        pickup_window=timedelta(days=3),
        shared_subscription=False,
        sweep_interval=5.0,
    )
    task = asyncio.create_task(worker.run())
    await worker.ready.wait()
    print("ready", flush=True)
    await task


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        asyncio.run(worker_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--kiosks", type=int, default=200)
    parser.add_argument("--events-per-kiosk", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
