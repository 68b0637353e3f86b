"""kill -9 of the kiosk daemon and of a cloud worker at random (seeded) points.

The kiosk is the real daemon as a subprocess (``python -m kiosk.cli run``) on a simulated
Kerong board (a pseudo-terminal, occupancy sensors) with a simulated scanner; the cloud worker
is a subprocess too (`tests.sync_e2e.worker_process`). Drivers and customers scan barcodes and
codes; a "people" thread takes parcels out of or puts them into every door that springs open and
shuts it. Meanwhile one of the two processes is killed with SIGKILL a random moment after a scan
and restarted. At the end both are up and cloud and kiosk must converge (`differences`): no
event lost, none applied twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware_sim.lock_board import LockBoardSimulator
from hardware_sim.scanner import SimulatedScanner
from kiosk.hardware.protocols import BoardProtocol
from shared.sizes import Size

from .harness import LAYOUT, Cloud, Site, converge, eventually, make_site, running_site

SEED = 20260312
ROUNDS = 6
READY_TIMEOUT_S = 60.0


class Process:
    """A subprocess that prints a line starting with ``ready`` when it is."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=sink, env=os.environ | {"PYTHONPATH": "."}
            )

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if readable:
                line = self.process.stdout.readline().decode()
                if line.startswith("ready"):
                    return
                if not line:
                    break
        tail = self.log.read_text(errors="replace").splitlines()[-30:]
        raise AssertionError("a process never became ready:\n" + "\n".join(tail))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()


class People(threading.Thread):
    """Holds every door that springs open a moment, swaps what is inside, and shuts it."""

    def __init__(self, sim: LockBoardSimulator) -> None:
        super().__init__(name="people", daemon=True)
        self.sim = sim
        self.halt = threading.Event()
        self._seen: dict[int, float] = {}

    def run(self) -> None:
        while not self.halt.wait(0.02):
            for number in LAYOUT:
                door = self.sim.door(0, number)
                if not door.is_open:
                    continue
                seen = self._seen.setdefault(number, time.monotonic())
                if time.monotonic() - seen < 0.4:  # long enough for the 0.05 s polls
                    continue
                door.set_occupied(not door.occupied)
                door.close()
                del self._seen[number]

    def all_shut(self) -> bool:
        return not any(self.sim.door(0, n).is_open for n in LAYOUT)


@pytest.fixture
def hardware() -> Iterator[tuple[LockBoardSimulator, SimulatedScanner]]:
    sim = LockBoardSimulator(BoardProtocol.KERONG, {0: 8}, spring_delay_s=0.05)
    scanner = SimulatedScanner()
    sim.start()
    scanner.start()
    try:
        yield sim, scanner
    finally:
        scanner.stop()
        sim.stop()


def serial_config(site: Site, sim: LockBoardSimulator, scanner: SimulatedScanner) -> None:
    text = site.config_file.read_text(encoding="utf-8")
    start = text.index("\n[doors]\n") + 1
    end = text.index("\n[sync]\n") + 1
    doors = f"""[doors]
backend = "serial"
open_timeout_s = 3.0
poll_interval_s = 0.05

[doors.serial]
port = "{sim.path}"
protocol = "kerong"
request_timeout_s = 1.5
boards = [{{ address = 0, locks = 8 }}]

[scanner]
port = "{scanner.path}"

[monitor]
poll_interval_s = 0.05
max_backoff_s = 0.5

"""
    site.config_file.write_text(text[:start] + doors + text[end:], encoding="utf-8")


async def test_kill_9_of_kiosk_and_cloud_worker(
    cloud: Cloud,
    tmp_path: Path,
    hardware: tuple[LockBoardSimulator, SimulatedScanner],
) -> None:
    rng = random.Random(SEED)
    sim, scanner = hardware
    key_file = tmp_path / "cloud-key.pem"
    key_file.write_bytes(cloud.signer.private_pem())
    host, port = cloud.broker
    logs = tmp_path / "logs"
    logs.mkdir()
    people = People(sim)
    people.start()
    async with running_site(await make_site(cloud, tmp_path / "kiosk")) as site:
        serial_config(site, sim, scanner)

        def start_kiosk(run: int) -> Process:
            process = Process(
                [sys.executable, "-m", "kiosk.cli", "run", "--config", str(site.config_file)],
                logs / f"kiosk-{run:02d}.log",
            )
            process.wait_ready()
            return process

        def start_worker(run: int) -> Process:
            process = Process(
                [
                    sys.executable,
                    "-m",
                    "tests.sync_e2e.worker_process",
                    cloud.database_url,
                    host,
                    str(port),
                    str(key_file),
                ],
                logs / f"worker-{run:02d}.log",
            )
            process.wait_ready()
            return process

        runs = 0
        started: list[Process] = []
        try:
            worker = await asyncio.to_thread(start_worker, runs)
            started.append(worker)
            kiosk = await asyncio.to_thread(start_kiosk, runs)
            started.append(kiosk)
            rows = [await site.reserve(size) for size in (Size.SMALL,) * 4 + (Size.MEDIUM,) * 2]
            codes = {str(r["allocation_id"]): await site.code(r["allocation_id"]) for r in rows}
            barcodes = {str(r["allocation_id"]): r["package_id"] for r in rows}
            cancelled = False
            for _ in range(ROUNDS):
                statuses = {a: site.kiosk_status(a) for a in barcodes}
                choices = [barcodes[a] for a, s in statuses.items() if s == "reserved"]
                choices += [codes[a] for a, s in statuses.items() if s == "deposited"]
                if choices:
                    scanner.scan(rng.choice(choices))
                if not cancelled and rng.random() < 0.3:
                    waiting = [a for a, s in statuses.items() if s == "reserved"]
                    if waiting:
                        await site.cancel(uuid.UUID(waiting[-1]))
                        cancelled = True
                await asyncio.sleep(rng.uniform(0.0, 0.8))
                runs += 1
                if rng.random() < 0.5:
                    await asyncio.to_thread(kiosk.kill)
                    kiosk = await asyncio.to_thread(start_kiosk, runs)
                    started.append(kiosk)
                else:
                    await asyncio.to_thread(worker.kill)
                    worker = await asyncio.to_thread(start_worker, runs)
                    started.append(worker)
            await eventually(people.all_shut)
            await converge(site, within=60)
            moved = [site.kiosk_status(a) for a in barcodes]
            assert any(s in ("deposited", "picked_up") for s in moved)
        finally:
            people.halt.set()
            for process in started:
                await asyncio.to_thread(process.kill)
