"""The failover campaign: faults one at a time and two at once under a steady carrier load, and
what they cost, counted.

The system (all on loopback, Debian's packages): etcd x3 and PostgreSQL x2 under Patroni in
synchronous mode (`deploy/ha/cluster.py`), two cloud nodes with their background jobs behind
HAProxy (`deploy/ha/cloud_nodes.py`), and a webhook receiver counting the notifications. The
load: carriers reserving and depositing parcels through HAProxy, retrying what failed (as a
carrier does, idempotent by ``package_id``).

Faults, in turn: kill -9 of the PostgreSQL primary's machine (Patroni and PostgreSQL), of a
cloud node, of an etcd member, and two at once (primary + a cloud node, etcd member + a cloud
node). After each, the campaign measures the time to the first allocation acknowledged after
it, restarts what was killed and waits for the cluster to be whole again.

Counted at the end, from the database and the receiver: allocations acknowledged (2xx) and
missing, doors holding two live parcels, deposits acknowledged and not recorded, pickup-code
notifications never delivered, and notifications delivered more than once (at-least-once
delivery: a node killed between sending and recording resends; receivers dedupe on the
``Idempotency-Key``).

    python bench/failover_campaign.py [--faults 20] [--workers 4]

Prints one JSON object on its last line. Needs root (PostgreSQL runs as ``postgres``) and the
packages of ``scripts/install-system-tools``. tests/ha/test_campaign.py runs it bounded in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.store import database as db
from deploy.ha.cloud_nodes import CloudNodes
from deploy.ha.cluster import RUN_AS, Cluster, free_port

ADMIN = "campaign-admin"
FAULT_KINDS = (
    "postgres_primary",
    "cloud_node",
    "etcd_member",
    "postgres_primary+cloud_node",
    "etcd_member+cloud_node",
)
RETRYABLE = {502, 503, 504}


@dataclass
class Tally:
    acknowledged: dict[str, str] = field(default_factory=dict)  # package -> allocation id
    deposited: set[str] = field(default_factory=set)  # allocation ids
    picked_up: set[str] = field(default_factory=set)  # allocation ids
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acks: list[tuple[float, float]] = field(default_factory=list)  # (asked, acknowledged)


class Receiver:
    """The carrier's webhook: counts each Idempotency-Key it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Closes the senders' keep-alive connections too, and waits for their handlers (left
        to the loop's teardown, Python 3.11 logs each cancelled one as an error)."""
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1)
                    for line in head.decode("latin-1").split("\r\n")[1:]
                    if ": " in line
                )
                lowered = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                self.keys[lowered.get("idempotency-key", "?")] += 1
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()


async def _call(
    client: httpx.AsyncClient, tally: Tally, method: str, path: str, **kw: Any
) -> httpx.Response:
    """One request, retried (as a carrier would) while the service is away."""
    while True:
        try:
            r = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            tally.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        tally.statuses[r.status_code] += 1
        if r.status_code in RETRYABLE:
            await asyncio.sleep(0.2)
            continue
        return r


async def _load(client: httpx.AsyncClient, tally: Tally, carrier: str, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {carrier}"}
    while not stop.is_set():
        package = f"P-{uuid.uuid4().hex[:12]}"
        asked_at = time.monotonic()
        r = await _call(
            client,
            tally,
            "POST",
            "/api/v1/allocations",
            headers=headers,
            json={
                "location_id": "HA-1",
                "package_id": package,
                "order_id": f"O-{package}",
                "customer_id": f"c-{package}",
                "package_size": "small",
            },
        )
        if r.status_code == 409:  # location full: deposit less, or wait for pickups
            await asyncio.sleep(0.2)
            continue
        assert r.status_code in (200, 201), r.text
        allocation_id = r.json()["allocation_id"]
        tally.acknowledged[package] = allocation_id
        # With when it was first asked: a request already past the database when a fault
        # struck says nothing about recovery from it.
        tally.acks.append((asked_at, time.monotonic()))
        r = await _call(
            client,
            tally,
            "POST",
            f"/api/v1/allocations/{allocation_id}/deposit",
            headers=headers,
            json={"driver_id": "d1", "scan_code": package},
        )
        # 409: an earlier try was applied and its answer lost (deposited already).
        if r.status_code == 200 or (
            r.status_code == 409 and r.json()["error"]["details"].get("status") == "deposited"
        ):
            tally.deposited.add(allocation_id)
        if r.status_code != 200:
            continue
        # The customer picks it up, so the location never fills. 410: an earlier try took it.
        r = await _call(
            client,
            tally,
            "POST",
            "/api/v1/pickup",
            headers=headers,
            json={"location_id": "HA-1", "pickup_code": r.json()["pickup_code"]},
        )
        if r.status_code in (200, 410):
            tally.picked_up.add(allocation_id)


async def _first_success_after(tally: Tally, since: float, within: float) -> float | None:
    """Seconds from ``since`` to the first allocation asked after it and acknowledged."""
    deadline = since + within
    while time.monotonic() < deadline:
        after = [acked for asked, acked in tally.acks if asked > since]
        if after:
            return min(after) - since
        await asyncio.sleep(0.05)
    return None


def _fault_plan(faults: int) -> list[str]:
    return [FAULT_KINDS[i % len(FAULT_KINDS)] for i in range(faults)]


async def run_campaign(faults: int = 20, workers: int = 4, doors: int = 1000) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="locker-campaign-"))
    shutil.chown(folder, RUN_AS)
    cluster = Cluster.plan(folder / "db")
    receiver = Receiver()
    nodes: CloudNodes | None = None
    recovery: dict[str, list[float]] = {kind: [] for kind in FAULT_KINDS}
    unrecovered: list[str] = []
    started = time.monotonic()
    try:
        (folder / "db").mkdir()
        shutil.chown(folder / "db", RUN_AS)
        await asyncio.to_thread(cluster.up)
        await db.migrate(cluster.database_url)
        await receiver.start()
        nodes = CloudNodes(
            folder / "cloud",
            cluster.database_url,
            env={
                "LOCKER_ADMIN_API_KEY": ADMIN,
                "LOCKER_NOTIFICATION_SENDER": "webhook",
                "LOCKER_NOTIFICATION_INTERVAL_SECONDS": "0.5",
                "LOCKER_DB_POOL_TIMEOUT_SECONDS": "2",
                "LOCKER_DB_POOL_MAX": "8",
                # A retried pickup whose first try went through fails; not a guesser.
                "LOCKER_PICKUP_FAILURES_PER_CARRIER": "1000000",
                "LOCKER_PICKUP_FAILURES_PER_LOCATION": "1000000",
            },
        )
        await asyncio.to_thread(nodes.start)
        async with httpx.AsyncClient(base_url=nodes.url, timeout=30) as client:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            r = await client.post(
                "/api/v1/admin/carriers",
                headers=admin,
                json={
                    "carrier_id": "acme",
                    "name": "Acme",
                    "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
                },
            )
            assert r.status_code == 201, r.text
            carrier = r.json()["api_key"]
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
                    "door_counts": {"small": doors},
                },
            )
            assert r.status_code == 201, r.text
            tally = Tally()
            stop = asyncio.Event()
            load = [
                asyncio.create_task(_load(client, tally, carrier, stop)) for _ in range(workers)
            ]
            await asyncio.sleep(2)
            for kind in _fault_plan(faults):
                fault_at = await asyncio.to_thread(_inject, cluster, nodes, kind)
                took = await _first_success_after(tally, fault_at, 120)
                if took is None:
                    unrecovered.append(kind)
                else:
                    recovery[kind].append(took)
                await asyncio.to_thread(_heal, cluster, nodes)
                await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*load)
        report = await _count(cluster, tally, receiver)
    finally:
        await receiver.stop()
        if nodes is not None:
            nodes.stop()
        cluster.down()
        shutil.rmtree(folder, ignore_errors=True)
    every = [t for times in recovery.values() for t in times]
    report |= {
        "faults": faults,
        "unrecovered": unrecovered,
        "recovery_s": {
            kind: {"n": len(times), "p50": _p50(times), "max": max(times, default=None)}
            for kind, times in recovery.items()
        },
        "recovery_all_s": {"p50": _p50(every), "max": max(every, default=None)},
        "duration_s": round(time.monotonic() - started, 1),
    }
    return report


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _inject(cluster: Cluster, nodes: CloudNodes, kind: str) -> float:
    """Applies a fault; returns when (monotonic)."""
    for part in kind.split("+"):
        if part == "postgres_primary":
            primary = cluster.primary()
            assert primary is not None, "no primary to kill"
            cluster.kill_node(primary)
        elif part == "cloud_node":
            nodes.kill_node(0)
        elif part == "etcd_member":
            cluster.kill_etcd(0)
    return time.monotonic()


def _heal(cluster: Cluster, nodes: CloudNodes) -> None:
    """Restarts what is down and waits until the whole is back (a primary, a sync standby)."""
    for index in range(len(cluster.etcd)):
        if not cluster.running(f"etcd{index}"):
            cluster.start_etcd(index)
    for index in range(len(cluster.nodes)):
        if not cluster.running(f"node{index}"):
            cluster.start_node(index)
    for index in range(nodes.count):
        if index not in nodes.running():
            nodes.start_node(index)
    cluster.wait_ready(120)


async def _count(cluster: Cluster, tally: Tally, receiver: Receiver) -> dict[str, Any]:
    """What the faults cost, from the database (the new primary) and the receiver."""
    # The notifications of the last deposits: until every due one is sent (or 60 s).
    deadline = time.monotonic() + 60
    async with await psycopg.AsyncConnection.connect(cluster.database_url) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT count(*) FROM notifications WHERE status = 'pending' AND due_at <= now()"
            )
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                break
            await asyncio.sleep(0.5)
        cur = await conn.execute("SELECT package_id, allocation_id::text, status FROM allocations")
        stored = {package: (ident, status) for package, ident, status in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT count(*) FROM (SELECT door_id FROM allocations"
            " WHERE status IN ('reserved', 'deposited', 'expired')"
            " GROUP BY door_id HAVING count(*) > 1) twice"
        )
        doubled = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute(
            "SELECT idempotency_key::text, status FROM notifications WHERE kind = 'pickup_code'"
        )
        pickup_notices = dict(await cur.fetchall())
    lost = [p for p in tally.acknowledged if p not in stored]
    # A deposit acknowledged is recorded: the parcel is deposited, or picked up since.
    kept = {ident for ident, status in stored.values() if status in ("deposited", "picked_up")}
    deposited_lost = [a for a in tally.deposited if a not in kept]
    took = {ident for ident, status in stored.values() if status == "picked_up"}
    pickups_lost = [a for a in tally.picked_up if a not in took]
    # A notice cancelled before it was sent (its parcel picked up first) is not owed; every
    # other one is, and must have reached the receiver.
    owed = [k for k, status in pickup_notices.items() if status != "cancelled"]
    never_delivered = [k for k in owed if receiver.keys[k] == 0]
    return {
        "allocations_acknowledged": len(tally.acknowledged),
        "allocations_lost": len(lost),
        "doors_given_twice": int(doubled),
        "deposits_acknowledged": len(tally.deposited),
        "deposits_lost": len(deposited_lost),
        "pickups_acknowledged": len(tally.picked_up),
        "pickups_lost": len(pickups_lost),
        "pickup_notifications": len(pickup_notices),
        "pickup_notifications_owed": len(owed),
        "notifications_never_delivered": len(never_delivered),
        "notifications_delivered_twice": sum(1 for n in receiver.keys.values() if n > 1),
        "answers": {str(k): v for k, v in sorted(tally.statuses.items())},
        "transport_errors": dict(tally.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    report = asyncio.run(run_campaign(args.faults, args.workers))
    print(json.dumps(report))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
