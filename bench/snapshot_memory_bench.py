"""Snapshot memory benchmark: the cloud's peak Python memory while it sends one location's
snapshot in parts, built whole (before issue 14's streaming) against streamed from a
server-side cursor (now).

What is real: PostgreSQL (a location with N doors and N live reservations made through
`reserve_many`, two registered kiosks so every allocation carries two code hashes), the
snapshot reads, the splitting and the signing of every part. What is left out: the broker (each
sealed part is dropped instead of published). Figure: ``tracemalloc`` peak above the start, in
MB, for each way, and the parts sent. Last line: one JSON object.

Usage: ``python bench/snapshot_memory_bench.py --database-url URL [--allocations 5000 20000]``
(the database is migrated and written to: use a scratch one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud import doors, locations
from cloud.carriers import create_carrier
from cloud.doors import DoorSpec
from cloud.parcels.requests import AllocationRequest
from cloud.parcels.reserve import Job, reserve_many
from cloud.store import database as db
from cloud.sync.keys import register_kiosk
from cloud.sync.publisher import Publisher
from cloud.sync.snapshot import build_snapshot
from shared.clock import SystemClock
from shared.protocol import CLOUD_SENDER, MessageType, seal
from shared.signing import Signer
from shared.sizes import Size
from shared.snapshot_parts import split_snapshot


def now() -> datetime:
    return datetime.now(UTC)


async def make_location(pool: db.Pool, count: int) -> str:
    tag = uuid.uuid4().hex[:8]
    location, carrier = f"mem-{tag}", f"mem-carrier-{tag}"
    async with pool.connection() as conn, conn.transaction():
        await create_carrier(conn, carrier_id=carrier, name=carrier, webhook_url=None, now=now())
        await locations.create_location(
            conn,
            location_id=location,
            name=location,
            address="Bench street 1",
            latitude=52.2,
            longitude=21.0,
            timezone="Europe/Warsaw",
            operating_hours=None,
            now=now(),
        )
        await doors.add_doors(
            conn, location, [DoorSpec(n, Size.SMALL) for n in range(1, count + 1)], now()
        )
        for k in range(2):
            await register_kiosk(
                conn,
                kiosk_id=f"{location}-k{k}",
                location_id=location,
                public_key=Signer.generate().verifier.public_base64(),
                code_secret=secrets.token_bytes(32),
                now=now(),
            )
    for start in range(0, count, 500):
        jobs = [
            Job(
                carrier,
                AllocationRequest(
                    location_id=location,
                    package_id=f"PKG-{n:06d}",
                    order_id=f"ORD-{n:06d}",
                    customer_id=f"cust-{n:06d}",
                    size=Size.SMALL,
                ),
                now(),
                timedelta(hours=24),
            )
            for n in range(start, min(start + 500, count))
        ]
        async with pool.connection() as conn:
            await reserve_many(conn, jobs)
    return location


async def built_whole(pool: db.Pool, signer: Signer, location: str) -> int:
    """The way before issue 14: the whole snapshot built, split, each part sealed."""
    body = await build_snapshot(pool, location)
    parts = split_snapshot(body)
    for part in parts:
        seal(
            signer,
            MessageType.SNAPSHOT_PART,
            location_id=location,
            sender=CLOUD_SENDER,
            body=part,
            now=now(),
        )
    return len(parts)


async def streamed(pool: db.Pool, signer: Signer, location: str) -> int:
    sent = 0

    async def drop(_topic: str, _payload: bytes, _qos: int, _retain: bool) -> None:
        nonlocal sent
        sent += 1

    await Publisher(pool, signer, SystemClock(), drop).send_snapshot(location)
    return sent


async def measure(way: Any, pool: db.Pool, signer: Signer, location: str) -> dict[str, float]:
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    parts = await way(pool, signer, location)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"peak_mb": round((peak - base) / 1e6, 1), "parts": parts, "s": round(seconds, 2)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    await db.migrate(args.database_url)
    pool = await db.open_pool(args.database_url, min_size=1, max_size=4)
    signer = Signer.generate()
    results: dict[str, Any] = {}
    try:
        for count in args.allocations:
            location = await make_location(pool, count)
            results[str(count)] = {
                "built_whole": await measure(built_whole, pool, signer, location),
                "streamed": await measure(streamed, pool, signer, location),
            }
    finally:
        await pool.close()
    return {"bench": "snapshot_memory", "allocations": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--allocations", type=int, nargs="+", default=[5000, 20000])
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
