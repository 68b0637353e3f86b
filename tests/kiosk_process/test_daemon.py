"""The daemon in-process: boot, scanner routing, refusals and failures that never stop it.

The door bank is the in-memory fake (the daemon builds it from ``backend = "fake"``; the test
reaches it through `Daemon.ctx`), the scanner is the simulator's pseudo-terminal, and the store
is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import kiosk.daemon as daemon_module
from hardware_sim.scanner import SimulatedScanner
from kiosk.config import load_config
from kiosk.daemon import Daemon, DaemonError, ScanKind, scan_kind
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import allocations
from shared.sizes import Size
from shared.states import AllocationStatus

from .helpers import open_store, seed, write_config

FAKE = '[doors]\nbackend = "fake"\nopen_timeout_s = 0.5\n[doors.fake]\ndoors = 8\n'
LAYOUT = dict.fromkeys(range(1, 9), Size.SMALL)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@dataclass
class Running:
    daemon: Daemon
    scanner: SimulatedScanner
    task: asyncio.Task[None]
    stop: asyncio.Event
    ready: list[str]

    @property
    def bank(self) -> FakeDoorBank:
        assert self.daemon.ctx is not None
        bank = self.daemon.ctx.bank
        assert isinstance(bank, FakeDoorBank)
        return bank

    def status(self, allocation_id: str) -> AllocationStatus:
        assert self.daemon.ctx is not None
        return allocations.get_allocation(self.daemon.ctx.store.db, allocation_id).status

    async def scan(self, line: str) -> None:
        before = self.daemon.scans
        self.scanner.scan(line)
        await wait_for(lambda: self.daemon.scans > before)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    scanner = SimulatedScanner()
    scanner.start()
    path = write_config(tmp_path, doors=FAKE, scanner_port=scanner.path)
    with open_store(tmp_path / "kiosk.db") as store:
        seed(
            store,
            LAYOUT,
            deposited=[("p1", 1, "ABC234"), ("p2", 2, "DEF567")],
            reserved=[("r1", 5, "PKG-R1")],
        )
    daemon = Daemon(load_config(path))
    stop = asyncio.Event()
    ready: list[str] = []
    task = asyncio.create_task(daemon.run(stop, on_ready=ready.append))
    await wait_for(lambda: bool(ready) or task.done())
    run = Running(daemon, scanner, task, stop, ready)
    try:
        yield run
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        scanner.stop()


def test_pickup_codes_and_barcodes_are_told_apart() -> None:
    assert scan_kind("ABC234") is ScanKind.PICKUP
    assert scan_kind("abc-234") is ScanKind.PICKUP
    assert scan_kind("PKG-R1") is ScanKind.DROP_OFF
    assert scan_kind("1Z999AA10123456784") is ScanKind.DROP_OFF


async def test_a_scanned_pickup_code_opens_its_door_and_the_shut_door_completes_it(
    running: Running,
) -> None:
    assert running.ready[0].startswith("ready: location loc-test, kiosk kiosk-test, 8 doors")
    await running.scan("ABC234")
    await wait_for(lambda: running.bank.is_open(1))
    running.bank.close(1)
    await wait_for(lambda: running.status("p1") is AllocationStatus.PICKED_UP)


async def test_a_scanned_barcode_is_a_drop_off_into_its_reserved_door(running: Running) -> None:
    await running.scan("PKG-R1")
    await wait_for(lambda: running.bank.is_open(5))
    running.bank.close(5)
    await wait_for(lambda: running.status("r1") is AllocationStatus.DEPOSITED)


async def test_refused_scans_are_logged_with_their_reason_and_the_loop_goes_on(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kiosk.daemon")
    await running.scan("UNKNOWN-PARCEL")
    await running.scan("ZZZ999")
    assert "refused (unknown_barcode)" in caplog.text
    assert "refused (unknown_code)" in caplog.text
    assert "ZZZ999" not in caplog.text  # a code is a secret, even a wrong one
    await running.scan("DEF567")
    await wait_for(lambda: running.bank.is_open(2))
    assert not running.task.done()


async def test_an_unexpected_error_in_one_scan_never_stops_the_monitor_or_the_loop(
    running: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the flow blew up")

    monkeypatch.setattr(daemon_module, "pick_up", broken)
    await running.scan("ABC234")
    assert "scan of a pickup code failed" in caplog.text
    monkeypatch.undo()
    # The monitor still records doors: a door pushed open by hand is a tamper.
    running.bank.open_by_hand(7)
    assert running.daemon.ctx is not None
    from kiosk.store import doors

    await wait_for(lambda: doors.get_door(running.daemon.ctx.store.db, 7).sensor_open is True)
    await running.scan("ABC234")
    await wait_for(lambda: running.bank.is_open(1))
    assert not running.task.done()


async def test_stopping_closes_the_store_and_the_scanner(running: Running) -> None:
    running.stop.set()
    await asyncio.wait_for(running.task, 10)
    assert running.task.exception() is None
    assert running.daemon.ctx is not None
    with pytest.raises(Exception, match="closed"):
        running.daemon.ctx.store.db.execute("SELECT 1")


async def test_a_missing_scanner_port_stops_the_boot_with_a_clear_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, doors=FAKE, scanner_port=str(tmp_path / "no-such-tty"))
    with pytest.raises(DaemonError, match="no-such-tty"):
        await Daemon(load_config(path)).run(asyncio.Event())


async def test_a_database_of_another_kiosk_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, doors=FAKE)
    await_ready: list[str] = []
    stop = asyncio.Event()
    stop.set()
    await Daemon(load_config(path)).run(stop, on_ready=await_ready.append)
    other = path.read_text().replace('kiosk_id = "kiosk-test"', 'kiosk_id = "kiosk-other"')
    path.write_text(other)
    with pytest.raises(DaemonError, match="different kiosk_id"):
        await Daemon(load_config(path)).run(stop)
