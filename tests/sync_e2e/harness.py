"""The real cloud sync worker against the real kiosk daemon, over the real broker.

- The cloud: the session's migrated PostgreSQL, the parcel operations the API calls
  (`cloud.parcels`, through `tests/parcel_ops.py`), and `cloud.sync.worker.SyncWorker` in this
  process (or as a subprocess, `tests/sync_e2e/worker_process.py`, for kill -9).
- A site: a fresh location with eight doors (unique ids per test: the machine's Mosquitto is
  shared and keeps retained messages and persistent sessions), its kiosk provisioned with
  `cloud.sync.provisioning.provision_kiosk` (keys, code secret and ``kiosk.toml`` as
  ``locker-cloud provision-kiosk`` writes them), and the kiosk daemon (`kiosk.daemon.Daemon`:
  store, boot reconciliation, door monitor, `KioskSync`) in this process on the fake door bank.
- Workers subscribe without the shared group (``locker/v1/+/kiosk/#``): another test session
  on the same Mosquitto would otherwise receive part of this session's kiosk messages through
  ``$share/locker-cloud/...`` and drop them (its database does not know these kiosks).

`differences` is the state comparison: empty when cloud and kiosk agree. `converge` polls it
with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from psycopg.rows import DictRow

from cloud import doors, locations
from cloud.carriers import create_carrier
from cloud.doors import DoorSpec
from cloud.parcels.requests import AllocationRequest
from cloud.store.database import Pool
from cloud.sync.provisioning import provision_kiosk
from cloud.sync.worker import BrokerAddress, SyncWorker
from kiosk.config import load_config
from kiosk.daemon import Daemon
from kiosk.flows.context import FlowContext
from kiosk.hardware.fake_bank import FakeDoorBank
from shared.clock import SystemClock
from shared.protocol import Channel, topic
from shared.signing import Signer
from shared.sizes import Size
from tests import parcel_ops
from tests.kiosk_sync.conftest import TcpProxy

__all__ = ["TcpProxy"]

HOLD = timedelta(hours=24)
PICKUP_WINDOW = timedelta(days=3)
LAYOUT = {1: Size.SMALL, 2: Size.SMALL, 3: Size.SMALL, 4: Size.SMALL}
LAYOUT |= {5: Size.MEDIUM, 6: Size.MEDIUM, 7: Size.LARGE, 8: Size.LARGE}
LIVE = ("reserved", "deposited", "expired")


def now() -> datetime:
    return datetime.now(UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Cloud:
    """The cloud: PostgreSQL through ``pool``, its signing key, and sync workers."""

    pool: Pool
    database_url: str
    signer: Signer
    broker: tuple[str, int]
    workers: list[tuple[SyncWorker, asyncio.Task[None]]] = field(default_factory=list)

    async def start_worker(self, port: int | None = None, **options: Any) -> SyncWorker:
        """A worker connected to the broker (or to ``port`` on this host, a proxy); ``options``
        go to `SyncWorker` as they are."""
        host, broker_port = self.broker
        worker = SyncWorker(
            self.pool,
            database_url=self.database_url,
            broker=BrokerAddress(host if port is None else "127.0.0.1", port or broker_port),
            signer=self.signer,
            clock=SystemClock(),
            pickup_window=PICKUP_WINDOW,
            shared_subscription=False,
            sweep_interval=1.0,
            backoff_first=0.1,
            backoff_longest=1.0,
            **options,
        )
        task = asyncio.create_task(worker.run())
        self.workers.append((worker, task))
        await asyncio.wait_for(worker.ready.wait(), 20)
        return worker

    async def stop_workers(self) -> None:
        for _, task in self.workers:
            task.cancel()
        for _, task in self.workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.workers.clear()

    async def fetch(self, sql: str, *params: Any) -> list[DictRow]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()


@dataclass
class Site:
    """One location, its carrier and its provisioned kiosk (the daemon runs in this process)."""

    cloud: Cloud
    location_id: str
    carrier_id: str
    kiosk_id: str
    folder: Path
    code_secret: bytes
    kiosk_signer: Signer
    proxy: TcpProxy | None = None
    daemon: Daemon | None = None
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event | None = None

    @property
    def database(self) -> Path:
        return self.folder / "kiosk.db"

    @property
    def config_file(self) -> Path:
        return self.folder / "kiosk.toml"

    # The cloud side (what the carrier API calls)

    async def reserve(
        self, size: Size = Size.SMALL, customer: str | None = None, at: datetime | None = None
    ) -> DictRow:
        package = unique("PKG")
        async with self.cloud.pool.connection() as conn:
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
                now=at or now(),
                hold=HOLD,
            )
        assert created
        return row

    async def cancel(self, allocation_id: uuid.UUID, at: datetime | None = None) -> DictRow:
        async with self.cloud.pool.connection() as conn:
            return await parcel_ops.cancel(
                conn,
                carrier_id=self.carrier_id,
                allocation_id=allocation_id,
                reason="carrier",
                now=at or now(),
            )

    async def code(self, allocation_id: uuid.UUID | str) -> str:
        rows = await self.cloud.fetch(
            "SELECT c.code FROM allocations a JOIN pickup_codes c"
            " ON c.pickup_code_id = a.pickup_code_id WHERE a.allocation_id = %s",
            allocation_id,
        )
        code: str = rows[0]["code"]
        return code

    async def cloud_allocation(self, allocation_id: uuid.UUID | str) -> DictRow:
        rows = await self.cloud.fetch(
            "SELECT a.*, d.door_number FROM allocations a JOIN doors d USING (door_id)"
            " WHERE a.allocation_id = %s",
            allocation_id,
        )
        return rows[0]

    # The kiosk daemon

    async def start_kiosk(self) -> Daemon:
        assert self._task is None, "the kiosk runs already"
        daemon = Daemon(load_config(self.config_file))
        stop = asyncio.Event()
        ready: list[str] = []
        task = asyncio.create_task(daemon.run(stop, on_ready=ready.append))
        deadline = asyncio.get_running_loop().time() + 20
        while not ready and not task.done():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the kiosk daemon did not become ready")
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        self.daemon, self._task, self._stop = daemon, task, stop
        return daemon

    async def stop_kiosk(self) -> None:
        if self._task is not None and self._stop is not None:
            self._stop.set()
            await asyncio.wait_for(self._task, 15)
        self._task = self._stop = None

    @property
    def ctx(self) -> FlowContext:
        assert self.daemon is not None
        assert self.daemon.ctx is not None
        return self.daemon.ctx

    @property
    def bank(self) -> FakeDoorBank:
        bank = self.ctx.bank
        assert isinstance(bank, FakeDoorBank)
        return bank

    def wake_sync(self) -> None:
        if self.daemon is not None and self.daemon.sync is not None:
            self.daemon.sync.outbox_changed.set()

    @property
    def connected(self) -> bool:
        return bool(self.daemon and self.daemon.sync and self.daemon.sync.status.connected)

    # Reading the kiosk's SQLite file (works for a daemon in a subprocess too)

    def kiosk_rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"{self.database.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def kiosk_status(self, allocation_id: uuid.UUID | str) -> str | None:
        rows = self.kiosk_rows(
            "SELECT status FROM allocations WHERE allocation_id = ?", str(allocation_id)
        )
        return rows[0][0] if rows else None

    def kiosk_revision(self) -> int:
        value: int = self.kiosk_rows("SELECT last_revision FROM sync_state")[0][0]
        return value


async def make_cloud_location(
    cloud: Cloud, tag: str, specs: list[DoorSpec] | None = None
) -> tuple[str, str]:
    location_id, carrier_id = f"loc-{tag}", f"carrier-{tag}"
    async with cloud.pool.connection() as conn, conn.transaction():
        await create_carrier(
            conn, carrier_id=carrier_id, name=carrier_id, webhook_url=None, now=now()
        )
        await locations.create_location(
            conn,
            location_id=location_id,
            name=location_id,
            address="Test street 1",
            latitude=52.2,
            longitude=21.0,
            timezone="Europe/Warsaw",
            operating_hours=None,
            now=now(),
        )
        await doors.add_doors(
            conn,
            location_id,
            specs or [DoorSpec(n, size) for n, size in LAYOUT.items()],
            now(),
        )
    return location_id, carrier_id


async def make_site(
    cloud: Cloud,
    folder: Path,
    *,
    proxy: bool = False,
    ack_timeout_s: float = 1.0,
    specs: list[DoorSpec] | None = None,
) -> Site:
    """A location with doors, a kiosk provisioned for it (files in ``folder``), not started.

    With ``proxy``, the kiosk reaches the broker through a `TcpProxy` the test can kill.
    """
    tag = uuid.uuid4().hex[:10]
    location_id, carrier_id = await make_cloud_location(cloud, tag, specs)
    return await provision_site(
        cloud,
        folder,
        location_id=location_id,
        carrier_id=carrier_id,
        kiosk_id=f"kiosk-{tag}",
        proxy=proxy,
        ack_timeout_s=ack_timeout_s,
    )


async def provision_site(
    cloud: Cloud,
    folder: Path,
    *,
    location_id: str,
    carrier_id: str,
    kiosk_id: str,
    proxy: bool = False,
    ack_timeout_s: float = 1.0,
) -> Site:
    """A kiosk provisioned (files in ``folder``) at an existing location, not started: a
    location's second kiosk, given the first one's location."""
    relay = None
    host, port = cloud.broker
    if proxy:
        relay = TcpProxy(host, port)
        await relay.start()
        host, port = "127.0.0.1", relay.port
    async with cloud.pool.connection() as conn:
        provisioned = await provision_kiosk(
            conn,
            location_id=location_id,
            kiosk_id=kiosk_id,
            folder=folder,
            broker_url=f"mqtt://{host}:{port}",
            cloud_key=cloud.signer.verifier,
            now=now(),
        )
    # Complete what provisioning leaves to the installer: the door bank (fake, in memory),
    # a fast monitor and fast sync timings for tests.
    text = provisioned.config_file.read_text(encoding="utf-8")
    text = text.replace(
        'backend = "serial"',
        'backend = "fake"\nopen_timeout_s = 0.5\n\n[doors.fake]\ndoors = 8\n\n'
        "[monitor]\npoll_interval_s = 0.05\nmax_backoff_s = 0.5\n",
    )
    text += (
        "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\nkeepalive_s = 5\n"
        f"ack_timeout_s = {ack_timeout_s}\noutbox_check_s = 0.1\n"
    )
    provisioned.config_file.write_text(text, encoding="utf-8")
    secret = (folder / "code-secret").read_bytes().strip()
    key = Signer.from_pem((folder / "kiosk-key.pem").read_bytes())
    return Site(cloud, location_id, carrier_id, kiosk_id, folder, secret, key, proxy=relay)


async def clean_broker(site: Site) -> None:
    """Leaves nothing of the site on the shared broker: retained presence, persistent session."""
    host, port = site.cloud.broker
    with contextlib.suppress(aiomqtt.MqttError):
        async with aiomqtt.Client(host, port, identifier=site.kiosk_id, clean_session=True) as c:
            await c.publish(topic(site.location_id, Channel.KIOSK_PRESENCE), b"", retain=True)


# The state comparison


def _hash(secret: bytes, code: str) -> str:
    return hmac.new(secret, b"code:" + code.encode(), hashlib.sha256).hexdigest()


async def differences(site: Site) -> list[str]:
    """Where cloud and kiosk disagree about the site; empty when they are identical.

    Compared: each allocation's status (every allocation the kiosk knows, and every live one of
    the cloud), door and code (the kiosk's hash against the cloud's code hashed with the
    kiosk's secret) while live; each door's status and maintenance; every outbox event in the
    cloud's ``kiosk_events`` exactly once (and nothing else there), the cloud's cursor at the
    kiosk's last sequence; the kiosk's last revision equal to the location's revision.
    """
    cloud = site.cloud
    found: list[str] = []
    cloud_allocs = {
        str(r["allocation_id"]): r
        for r in await cloud.fetch(
            "SELECT a.allocation_id, a.status, a.cancel_reason, d.door_number, c.code"
            " FROM allocations a"
            " JOIN doors d USING (door_id) JOIN pickup_codes c USING (pickup_code_id)"
            " WHERE a.location_id = %s",
            site.location_id,
        )
    }
    kiosk_allocs = {
        r[0]: r
        for r in site.kiosk_rows(
            "SELECT a.allocation_id, a.status, a.door, c.code_hash, c.generation"
            " FROM allocations a LEFT JOIN codes c ON c.code_id = a.code_id"
        )
    }
    # issue 9: a code's hash is under the generation of the kiosk's secret it was issued with.
    secrets = {1: site.code_secret} | {
        r["generation"]: bytes(r["secret"])
        for r in await cloud.fetch(
            "SELECT generation, secret FROM code_secret_generations"
            " WHERE kiosk_id = %s AND secret IS NOT NULL",
            site.kiosk_id,
        )
    }
    for allocation_id in sorted(set(kiosk_allocs) | set(cloud_allocs)):
        c = cloud_allocs.get(allocation_id)
        k = kiosk_allocs.get(allocation_id)
        if c is None:
            found.append(f"allocation {allocation_id}: at the kiosk ({k}), not in the cloud")
            continue
        if k is None:
            if c["status"] in LIVE:
                found.append(f"allocation {allocation_id}: {c['status']} in the cloud only")
            continue
        if c["status"] != k[1]:
            found.append(
                f"allocation {allocation_id}: cloud {c['status']} ({c['cancel_reason']}),"
                f" kiosk {k[1]}"
            )
        elif c["status"] in LIVE:
            if c["door_number"] != k[2]:
                found.append(
                    f"allocation {allocation_id}: door {c['door_number']} in the cloud,"
                    f" {k[2]} at the kiosk"
                )
            if k[4] not in secrets or _hash(secrets[k[4]], c["code"]) != k[3]:
                found.append(f"allocation {allocation_id}: code hashes differ")
    cloud_doors = {
        r["door_number"]: (r["status"], r["maintenance_reason"] is not None)
        for r in await cloud.fetch(
            "SELECT door_number, status, maintenance_reason FROM doors WHERE location_id = %s",
            site.location_id,
        )
    }
    kiosk_doors = {
        r[0]: (r[1], r[1] == "maintenance")
        for r in site.kiosk_rows("SELECT number, status FROM doors")
    }
    for number in sorted(set(cloud_doors) | set(kiosk_doors)):
        c_door, k_door = cloud_doors.get(number), kiosk_doors.get(number)
        if c_door is None or k_door is None or c_door[0] != k_door[0]:
            found.append(f"door {number}: cloud {c_door}, kiosk {k_door}")
    outbox = site.kiosk_rows("SELECT sequence, event_id FROM outbox ORDER BY sequence")
    received = await cloud.fetch(
        "SELECT sequence, event_id::text AS event_id FROM kiosk_events WHERE kiosk_id = %s"
        " ORDER BY sequence",
        site.kiosk_id,
    )
    applied = [(r["sequence"], r["event_id"]) for r in received]
    if applied != [(s, e) for s, e in outbox]:
        missing = sorted(set(outbox) - set(applied))
        extra = sorted(set(applied) - set(outbox))
        found.append(
            f"events: missing in the cloud {missing[:5]}, unknown to the kiosk {extra[:5]}"
        )
    cursor = await cloud.fetch(
        "SELECT through_sequence FROM kiosk_cursors WHERE kiosk_id = %s", site.kiosk_id
    )
    last_sequence = outbox[-1][0] if outbox else 0
    if not cursor or cursor[0]["through_sequence"] != last_sequence:
        found.append(
            f"cursor {cursor[0]['through_sequence'] if cursor else None} != {last_sequence}"
        )
    revision = await cloud.fetch(
        "SELECT revision FROM locations WHERE location_id = %s", site.location_id
    )
    if revision[0]["revision"] != site.kiosk_revision():
        found.append(f"revision: cloud {revision[0]['revision']}, kiosk {site.kiosk_revision()}")
    return found


async def converge(site: Site, within: float = 30.0) -> None:
    """Waits until `differences` is empty; fails with the last differences at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await differences(site)
        if not found:
            return
        if loop.time() > deadline:
            raise AssertionError("cloud and kiosk did not converge:\n" + "\n".join(found))
        site.wake_sync()
        await asyncio.sleep(0.1)


async def eventually(check: Any, within: float = 20.0) -> None:
    """Waits until ``check()`` (sync or async) is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_site(site: Site) -> AsyncIterator[Site]:
    try:
        yield site
    finally:
        await site.stop_kiosk()
        if site.proxy is not None:
            await site.proxy.kill()
        await clean_broker(site)


# What people do at the kiosk (the door monitor records the closing)


async def deposit_at_kiosk(site: Site, barcode: str, driver_id: str = "driver-1") -> int:
    """A driver scans ``barcode``, puts the parcel in and shuts the door; returns the door."""
    from kiosk.flows.drop_off import drop_off

    await eventually(
        lambda: site.kiosk_rows("SELECT 1 FROM allocations WHERE barcode = ?", barcode)
    )
    result = await drop_off(site.ctx, barcode, driver_id=driver_id)
    site.bank.set_occupied(result.door)
    site.bank.close(result.door)
    allocation_id = result.allocation_id
    await eventually(lambda: site.kiosk_status(allocation_id) == "deposited")
    return result.door


async def pick_up_at_kiosk(site: Site, code: str) -> list[int]:
    """A customer types ``code``, takes the parcels and shuts the doors; returns the doors."""
    from kiosk.flows.pickup import pick_up

    result = await pick_up(site.ctx, code)
    opened = [opening.door for opening in result.openings]
    for door in opened:
        site.bank.set_occupied(door, False)
        site.bank.close(door)
    await eventually(
        lambda: (
            not site.kiosk_rows(
                "SELECT 1 FROM door_operations WHERE state IN ('unlocking', 'open')"
            )
        )
    )
    return opened


async def fingerprint(site: Site) -> dict[str, Any]:
    """Everything an accepted message could change, on both sides (to compare before/after)."""
    cloud = site.cloud
    return {
        "cloud_allocations": [
            tuple(r.values())
            for r in await cloud.fetch(
                "SELECT a.allocation_id::text, a.status, d.door_number, a.pickup_code_id,"
                " a.updated_at FROM allocations a JOIN doors d USING (door_id)"
                " WHERE a.location_id = %s ORDER BY 1",
                site.location_id,
            )
        ],
        "cloud_doors": [
            tuple(r.values())
            for r in await cloud.fetch(
                "SELECT door_number, status, maintenance_reason FROM doors"
                " WHERE location_id = %s ORDER BY 1",
                site.location_id,
            )
        ],
        "cloud_revision": (
            await cloud.fetch(
                "SELECT revision FROM locations WHERE location_id = %s", site.location_id
            )
        )[0]["revision"],
        "kiosk_events": [
            tuple(r.values())
            for r in await cloud.fetch(
                "SELECT k.kiosk_id, k.sequence, k.event_id::text FROM kiosk_events k"
                " JOIN kiosks USING (kiosk_id) WHERE kiosks.location_id = %s ORDER BY 1, 2",
                site.location_id,
            )
        ],
        "notifications": [
            tuple(r.values())
            for r in await cloud.fetch(
                "SELECT n.allocation_id::text, n.kind, n.status FROM notifications n"
                " JOIN allocations a USING (allocation_id) WHERE a.location_id = %s ORDER BY 1, 2",
                site.location_id,
            )
        ],
        "kiosk_allocations": site.kiosk_rows(
            "SELECT allocation_id, status, door, code_id, updated_at FROM allocations ORDER BY 1"
        ),
        "kiosk_doors": site.kiosk_rows("SELECT number, status, fault FROM doors ORDER BY 1"),
        "kiosk_operations": site.kiosk_rows("SELECT count(*) FROM door_operations"),
        "kiosk_outbox": site.kiosk_rows("SELECT sequence, event_id FROM outbox ORDER BY 1"),
        "kiosk_revision": site.kiosk_revision(),
    }


class Capture:
    """A raw MQTT client that records every message of a location, both directions."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.messages: list[tuple[str, bytes]] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Capture:
        host, port = self.site.cloud.broker
        self._client = aiomqtt.Client(host, port, identifier=unique("capture"))
        await self._client.__aenter__()
        await self._client.subscribe(f"locker/v1/{self.site.location_id}/#", qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            if isinstance(message.payload, bytes) and message.payload:
                self.messages.append((message.topic.value, message.payload))

    def of(self, suffix: str) -> list[tuple[str, bytes]]:
        return [(t, p) for t, p in self.messages if t.endswith(suffix)]

    async def publish(self, name: str, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(name, payload, qos=1)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
