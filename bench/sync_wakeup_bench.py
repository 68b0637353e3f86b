"""Sync worker wakeups under allocation load: publishing rounds per change, and what they cost.

Every committed allocation change notifies the sync workers (``locker_location_changes``, the
location id as payload). This bench commits changes as fast as ``--clients`` connections can,
on a few hot locations (each with a registered kiosk, so every change is really published:
signed and sent to the broker), in timed phases with the cloud's `SyncWorker` off and on
(alternating: off, on, off, on, ...), and counts, in the worker's process, how many publishing
rounds (``Publisher.publish_pending`` calls) and transactions (``Publisher._publish_round``
calls) it ran for those changes.

Each client loops: ``cloud.parcels.reserve.reserve`` at a random hot location, then a cancel
of it (two changes, two transactions, two notifications). When a phase's load stops, the
worker is given time to publish everything (``drain_s``: until every location's publication
has reached its revision); its counts and CPU time are read after that.

Figures per phase and as means (last line: one JSON object):

- ``changes_per_s``: changes committed per second by the clients (each a transaction);
- ``rounds_per_change``, ``transactions_per_change``: the worker's publishing rounds and
  publishing transactions per change (with the worker on);
- ``worker_cpu_ms_per_change``: the worker process's CPU (user + system) per change;
- ``drain_s``: from the end of the load until everything was published.

Usage: ``python bench/sync_wakeup_bench.py --database-url URL [--mqtt-url
mqtt://127.0.0.1:1883] [--locations 8] [--clients 16] [--duration 8] [--rounds 2]
[--worker-code CHECKOUT[@MS] ...]`` (the database is migrated and written to: use a scratch one).
Each ``--worker-code`` names a checkout (e.g. a ``git worktree`` of an older commit) whose
``cloud`` the worker's process imports (``PYTHONPATH``); with several, every round runs an
"on" phase for each after its "off" phase (in the order given, reversed every other round), so
they are compared in the same run under the same machine load. The load itself always runs
this checkout's code. ``CHECKOUT@MS`` is an experiment: that checkout's worker waits MS
milliseconds after the first notification of a wakeup before taking the rest (bench-only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cloud
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
from cloud.sync.publisher import Publisher
from cloud.sync.worker import BrokerAddress, SyncWorker
from shared.clock import SystemClock
from shared.signing import Signer
from shared.sizes import Size

HOLD = timedelta(hours=24)
DOORS = 40


def now() -> datetime:
    return datetime.now(UTC)


async def cancel(conn: db.Conn, allocation_id: uuid.UUID) -> None:
    """Cancels a reservation, as its carrier would (``cloud.parcels.finish.cancel``)."""
    async with unit(conn, now()) as work:
        found = await allocations.lock(conn, allocation_id)
        assert found is not None
        await finish.cancel(work, found, "bench")


async def setup(pool: db.Pool, count: int, tag: str) -> tuple[str, list[str]]:
    carrier = f"wb-carrier-{tag}"
    ids = [f"wb-{tag}-{i:02d}" for i in range(count)]
    async with pool.connection() as conn, conn.transaction():
        await create_carrier(conn, carrier_id=carrier, name=carrier, webhook_url=None, now=now())
        for location_id in ids:
            await locations.create_location(
                conn,
                location_id=location_id,
                name=location_id,
                address="Bench street 1",
                latitude=52.2,
                longitude=21.0,
                timezone="Europe/Warsaw",
                operating_hours=None,
                now=now(),
            )
            await doors.add_doors(
                conn, location_id, [DoorSpec(n, Size.SMALL) for n in range(1, DOORS + 1)], now()
            )
            await register_kiosk(
                conn,
                kiosk_id=f"k-{location_id}",
                location_id=location_id,
                public_key=Signer.generate().verifier.public_base64(),
                code_secret=secrets.token_bytes(32),
                now=now(),
            )
    return carrier, ids


async def client(url: str, carrier: str, hot: list[str], until: float, done: list[int]) -> None:
    pool = await db.open_pool(url, min_size=1, max_size=1)
    changes = 0
    try:
        while time.perf_counter() < until:
            package = f"PKG-{uuid.uuid4().hex[:12]}"
            async with pool.connection() as c:
                row, _ = await reserving.reserve(
                    c,
                    carrier_id=carrier,
                    request=AllocationRequest(
                        location_id=random.choice(hot),
                        package_id=package,
                        order_id=package,
                        customer_id=f"c-{package}",
                        size=Size.SMALL,
                    ),
                    now=now(),
                    hold=HOLD,
                )
                await cancel(c, row.allocation_id)
            changes += 2
    finally:
        await pool.close()
        done.append(changes)


async def behind(pool: db.Pool, hot: list[str]) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT coalesce(sum(l.revision - p.published_revision), 0) AS n"
            " FROM locations l JOIN location_publications p USING (location_id)"
            " WHERE l.location_id = ANY(%s)",
            (hot,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


def spawn_worker(
    url: str, host: str, port: int, key_file: Path, variant: str
) -> subprocess.Popen[bytes]:
    """The worker in a process of its own, importing ``cloud`` from the variant's checkout."""
    root, _, gather = variant.partition("@")
    return subprocess.Popen(  # noqa: S603 (our own interpreter and file)
        [sys.executable, __file__, "--worker", url, host, str(port), str(key_file), gather or "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONPATH": root},
    )


async def worker_counts(worker: subprocess.Popen[bytes], reset: bool = False) -> dict[str, Any]:
    assert worker.stdin is not None
    assert worker.stdout is not None
    worker.stdin.write(b"reset\n" if reset else b"stats\n")
    worker.stdin.flush()
    counts: dict[str, Any] = json.loads(await asyncio.to_thread(worker.stdout.readline))
    return counts


async def phase(
    args: argparse.Namespace,
    pool: db.Pool,
    carrier: str,
    hot: list[str],
    worker: subprocess.Popen[bytes] | None,
) -> dict[str, Any]:
    start_behind = await behind(pool, hot)
    done: list[int] = []
    start = time.perf_counter()
    until = start + args.duration
    await asyncio.gather(
        *(client(args.database_url, carrier, hot, until, done) for _ in range(args.clients))
    )
    elapsed = time.perf_counter() - start
    changes = sum(done)
    result: dict[str, Any] = {
        "worker": worker is not None,
        "changes": changes,
        "changes_per_s": round(changes / elapsed, 1),
    }
    if worker is None:
        # Leave nothing for the next "on" phase to publish: as if published.
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE location_publications p SET published_revision = l.revision"
                " FROM locations l WHERE l.location_id = p.location_id"
                " AND p.location_id = ANY(%s)",
                (hot,),
            )
        return result
    assert start_behind == 0, start_behind
    load_end = time.perf_counter()
    while True:
        if await behind(pool, hot) == 0:
            break
        await asyncio.sleep(0.01)
    drain = time.perf_counter() - load_end
    # Notifications still queued after the last publish make rounds too: read the counts
    # until they stop moving.
    counts = await worker_counts(worker)
    while True:
        await asyncio.sleep(0.5)
        again = await worker_counts(worker)
        if again["rounds"] == counts["rounds"]:
            break
        counts = again
    await worker_counts(worker, reset=True)
    result |= {
        "drain_s": round(drain, 2),
        "rounds": counts["rounds"],
        "transactions": counts["transactions"],
        "empty_transactions": counts["empty_transactions"],
        "rounds_per_change": round(counts["rounds"] / changes, 3),
        "transactions_per_change": round(counts["transactions"] / changes, 3),
        "worker_cpu_s": round(counts["cpu_s"], 2),
        "worker_cpu_ms_per_change": round(counts["cpu_s"] * 1000 / changes, 3),
    }
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url
    await db.migrate(url)
    parts = args.mqtt_url.split("://", 1)[1].split(":")
    host, port = parts[0], int(parts[1]) if len(parts) > 1 else 1883
    tag = uuid.uuid4().hex[:8]
    folder = Path(tempfile.mkdtemp(prefix="wakeup-bench-"))
    key_file = folder / "cloud-key.pem"
    key_file.write_bytes(Signer.generate().private_pem())
    pool = await db.open_pool(url, min_size=1, max_size=4)
    here, roots = args.here, args.roots
    phases: list[dict[str, Any]] = []
    try:
        carrier, hot = await setup(pool, args.locations, tag)
        for number in range(args.rounds):
            phases.append(await phase(args, pool, carrier, hot, None))
            # Alternate the order, so neither checkout always runs right after "off".
            for root in roots if number % 2 == 0 else roots[::-1]:
                worker = spawn_worker(url, host, port, key_file, root)
                try:
                    assert worker.stdout is not None
                    line = await asyncio.to_thread(worker.stdout.readline)
                    assert line.startswith(b"ready"), line
                    phases.append({"code": root} | await phase(args, pool, carrier, hot, worker))
                finally:
                    worker.kill()
                    worker.wait()
    finally:
        await pool.close()
    off = [p for p in phases if not p["worker"]]

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        return round(statistics.fmean(p[key] for p in rows), 3)

    workers = {}
    for root in roots:
        on = [p for p in phases if p.get("code") == root]
        workers[root] = {
            "changes_per_s": mean(on, "changes_per_s"),
            "worker_cost_pct": round(
                100 * (1 - mean(on, "changes_per_s") / mean(off, "changes_per_s")), 1
            ),
            "rounds_per_change": mean(on, "rounds_per_change"),
            "transactions_per_change": mean(on, "transactions_per_change"),
            "worker_cpu_ms_per_change": mean(on, "worker_cpu_ms_per_change"),
            "drain_s": mean(on, "drain_s"),
        }
    return {
        "bench": "sync_wakeup",
        "load_code": here,
        "locations": args.locations,
        "clients": args.clients,
        "duration_s": args.duration,
        "phases": phases,
        "changes_per_s_off": mean(off, "changes_per_s"),
        "worker_on": workers,
    }


async def worker_main(url: str, host: str, port: int, key_file: str, gather_ms: float) -> None:
    """The worker, with its publishing rounds and transactions counted (bench-only wrappers).

    With ``gather_ms``, an experiment: each wakeup waits that long after its first notification
    before taking the others waiting (the coalescing worker's ``_wakeup`` wrapped here; no
    such window exists in the product).
    """
    if gather_ms > 0:
        from cloud.sync import worker as worker_module

        wakeup = worker_module._wakeup

        async def gathered(listener: Any, within: float) -> list[Any]:
            first = [note async for note in listener.notifies(timeout=within, stop_after=1)]
            if not first:
                return first
            await asyncio.sleep(gather_ms / 1000)
            rest: list[Any] = await wakeup(listener, 0.0)
            return first + rest

        worker_module._wakeup = gathered
    counts: Counter[str] = Counter()
    publish_pending = Publisher.publish_pending
    publish_round = Publisher._publish_round

    async def counted_pending(self: Publisher, location_id: str) -> int:
        counts["rounds"] += 1
        return await publish_pending(self, location_id)

    async def counted_round(self: Publisher, location_id: str) -> Any:
        counts["transactions"] += 1
        result = await publish_round(self, location_id)
        if result is None:
            counts["empty_transactions"] += 1
        return result

    Publisher.publish_pending = counted_pending  # type: ignore[method-assign]
    Publisher._publish_round = counted_round  # type: ignore[method-assign]
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

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    # Counted from here: the first sweep at connection is not the load's.
    counts.clear()
    cpu_start = cpu()
    print("ready", flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        if line.strip() == "reset":
            counts.clear()
            cpu_start = cpu()
        out = {
            "rounds": 0,
            "transactions": 0,
            "empty_transactions": 0,
            **counts,
            "cpu_s": cpu() - cpu_start,
        }
        print(json.dumps(out), flush=True)
    task.cancel()


def _variant(spec: str) -> str:
    root, at, gather = spec.partition("@")
    return str(Path(root).resolve()) + at + gather


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        asyncio.run(
            worker_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--locations", type=int, default=8)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--worker-code",
        action="append",
        default=[],
        metavar="CHECKOUT",
        help="run the worker from this checkout (repeat to compare; default: this one);"
        " CHECKOUT@MS adds an MS-millisecond gathering window to its wakeups (experiment)",
    )
    args = parser.parse_args()
    args.here = str(Path(cloud.__file__).resolve().parent.parent)
    args.roots = [_variant(v) for v in args.worker_code] or [args.here]
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
