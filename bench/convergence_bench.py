"""Convergence benchmark: how long a fleet takes to agree with the cloud again after a fault.

What is real: PostgreSQL, Mosquitto, the cloud's `SyncWorker` (a subprocess, killed with
SIGKILL for the cloud restart), and each kiosk's `KioskSync` with its own SQLite store, MQTT
connection and key, with the product's default timers (reconnect backoff 0.5 s doubling to
60 s, full jitter; ack timeout 5 s doubling to 60 s). What is simulated: the kiosks share this
process (`bench/sync_bench.py`'s `Kiosk`); a broker kill is the death of a TCP relay in front
of Mosquitto (every connection aborted, nothing listening for the outage, then listening again:
what clients see of a broker restart without restarting the machine's shared Mosquitto).

Faults, each ``--outage`` seconds long, during which the cloud reserves one parcel per location
and every kiosk commits one event:

- ``broker_restart``: the relay of every client (kiosks and worker) dies and comes back;
- ``partition``: only the kiosks' relay dies (the worker stays connected);
- ``cloud_restart``: the worker is killed with SIGKILL and a new one started.

Per kiosk: seconds from the fault's end (relay listening again; new worker subscribed) until
the kiosk has applied the location's last revision and the cloud has acknowledged all its
events. Against: ``bare_reconnect_ms``, a plain aiomqtt client connecting through the restored
relay to the same broker. Last line: one JSON object.

Usage: ``python bench/convergence_bench.py --database-url URL [--kiosks 50] [--outage 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
from sync_bench import Kiosk, pct, reserve, setup_cloud, spawn_worker, wait_until

from cloud.embedded_broker import free_port
from cloud.store import database as db
from kiosk.config import SyncConfig
from kiosk.flows.context import FlowContext
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.sync.client import KioskSync
from shared.clock import SystemClock
from shared.signing import Signer


class Relay:
    """A TCP relay to the broker that can die (abort everything, stop listening) and return."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await asyncio.sleep(0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.add(writer.transport)
        server = self._server
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is not server or writer.transport.is_closing():
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self._transports.add(up_writer.transport)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            asyncio.create_task(self._pipe(source, sink))  # noqa: RUF006 (ends with its socket)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


def start_with_defaults(kiosk: Kiosk, cloud_key: Signer) -> None:
    """Starts the kiosk's sync with the product's default timers (not the sync bench's)."""
    config = SyncConfig(
        broker_host=kiosk.host,
        broker_port=kiosk.port,
        cloud_key=cloud_key.verifier,
        private_key_file=Path("unused.pem"),
        signer=kiosk.signer,
    )
    ctx = FlowContext(kiosk.store, FakeDoorBank(sorted(range(1, 9))), SystemClock())
    kiosk.sync = KioskSync(ctx, config)  # type: ignore[assignment]
    kiosk.task = asyncio.create_task(kiosk.sync.run())


async def bare_reconnects(port: int, rounds: int = 30) -> list[float]:
    times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        async with aiomqtt.Client("127.0.0.1", port, identifier=f"bare-{uuid.uuid4().hex[:8]}"):
            times.append((time.perf_counter() - start) * 1000)
    return times


async def revisions(pool: db.Pool, fleet: list[Kiosk]) -> dict[str, int]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT location_id, revision FROM locations WHERE location_id = ANY(%s)",
            ([k.location_id for k in fleet],),
        )
        return {row["location_id"]: row["revision"] for row in await cur.fetchall()}


async def converged_after(pool: db.Pool, fleet: list[Kiosk], since: float) -> list[float]:
    """Seconds after ``since`` at which each kiosk had the cloud's revision and no unacked
    event (polled every 20 ms)."""
    target = await revisions(pool, fleet)
    done: dict[str, float] = {}
    deadline = time.perf_counter() + 180
    while len(done) < len(fleet):
        for kiosk in fleet:
            if kiosk.kiosk_id in done:
                continue
            if kiosk.revision() >= target[kiosk.location_id] and kiosk.unacked() == 0:
                done[kiosk.kiosk_id] = time.perf_counter() - since
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(fleet) - len(done)} kiosks never converged")
        await asyncio.sleep(0.02)
    return sorted(done.values())


async def during_outage(pool: db.Pool, fleet: list[Kiosk], carrier: str, outage: float) -> None:
    start = time.perf_counter()
    for kiosk in fleet:
        await reserve(pool, carrier, kiosk.location_id)
        kiosk.add_events(1)
    await asyncio.sleep(max(0.0, outage - (time.perf_counter() - start)))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(pct(values, 0.5), 2),
        "p99": round(pct(values, 0.99), 2),
        "max": round(max(values), 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url
    await db.migrate(url)
    parts = args.mqtt_url.split("://", 1)[1].split(":")
    host, port = parts[0], int(parts[1]) if len(parts) > 1 else 1883
    tag = uuid.uuid4().hex[:8]
    carrier = f"conv-carrier-{tag}"
    folder = Path(tempfile.mkdtemp(prefix="convergence-bench-"))
    key_file = folder / "cloud-key.pem"
    cloud_signer = Signer.generate()
    key_file.write_bytes(cloud_signer.private_pem())
    pool = await db.open_pool(url, min_size=2, max_size=10)
    kiosk_relay, worker_relay = Relay(host, port), Relay(host, port)
    await kiosk_relay.start()
    await worker_relay.start()
    fleet = [
        Kiosk(folder, f"cl-{tag}-{i:03d}", f"ck-{tag}-{i:03d}", "127.0.0.1", kiosk_relay.port)
        for i in range(args.kiosks)
    ]
    await setup_cloud(pool, fleet, carrier)
    results: dict[str, Any] = {}
    worker: subprocess.Popen[bytes] | None = None

    async def start_worker() -> float:
        nonlocal worker
        worker = spawn_worker(url, "127.0.0.1", worker_relay.port, key_file)
        assert worker.stdout is not None
        line = await asyncio.to_thread(worker.stdout.readline)
        assert line.startswith(b"ready"), line
        return time.perf_counter()

    try:
        await start_worker()
        for kiosk in fleet:
            start_with_defaults(kiosk, cloud_signer)
        await wait_until(lambda: all(k.sync and k.sync.status.connected for k in fleet), 120)
        await converged_after(pool, fleet, time.perf_counter())
        results["bare_reconnect_ms"] = summary(await bare_reconnects(kiosk_relay.port))

        for fault in args.faults:
            if fault == "cloud_restart":
                assert worker is not None
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                await during_outage(pool, fleet, carrier, args.outage)
                ended = await start_worker()
            else:
                relays = [kiosk_relay] + ([worker_relay] if fault == "broker_restart" else [])
                for relay in relays:
                    await relay.kill()
                await during_outage(pool, fleet, carrier, args.outage)
                for relay in relays:
                    await relay.start()
                ended = time.perf_counter()
            results[fault] = summary(await converged_after(pool, fleet, ended))
            await asyncio.sleep(2)  # let the fleet settle between faults
    finally:
        for kiosk in fleet:
            await kiosk.stop()
            kiosk.store.close()
        if worker is not None:
            worker.kill()
            worker.wait()
        await kiosk_relay.kill()
        await worker_relay.kill()
        await pool.close()
        with contextlib.suppress(aiomqtt.MqttError):
            async with aiomqtt.Client(host, port, identifier=f"conv-clean-{tag}") as cleaner:
                for kiosk in fleet:
                    await cleaner.publish(
                        f"locker/v1/{kiosk.location_id}/kiosk/presence", b"", qos=1, retain=True
                    )
    return {
        "bench": "convergence",
        "kiosks": len(fleet),
        "outage_s": args.outage,
        "convergence_s": {k: v for k, v in results.items() if k != "bare_reconnect_ms"},
        "bare_reconnect_ms": results["bare_reconnect_ms"],
        "goal_5s_met": {k: v["p99"] < 5.0 for k, v in results.items() if k != "bare_reconnect_ms"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--kiosks", type=int, default=50)
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument(
        "--faults",
        nargs="+",
        default=["broker_restart", "partition", "cloud_restart"],
        choices=["broker_restart", "partition", "cloud_restart"],
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
