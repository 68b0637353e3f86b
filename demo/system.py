"""The demo's parts after the cloud: its kiosk on simulated doors, and the parcels put in.

One concept: the kiosk side of the demo, started and stopped together, and seeded the honest
way: the carrier reserves doors through the API, the kiosk learns of them over MQTT, a simulated
driver scans each barcode at the kiosk, the door opens, the person puts the parcel in and shuts
it (`demo.person`), and the deposit syncs back to the cloud. Then it prints the pickup codes with
their doors and a ``READY`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloud.config import CloudSettings
from demo import seed
from demo.options import DemoError, DemoOptions
from demo.person import shut_doors_after
from demo.provisioning import provision_demo_kiosk, write_hardware_config
from hardware_sim.bank import SimulatedBank
from kiosk.config import load_config
from kiosk.daemon import Daemon, ScanOutcome
from kiosk.flows.context import FlowContext
from kiosk.store.allocations import find_allocation
from shared.cancellation import cancel_and_wait

SEED_TIMEOUT_S = 60.0


@dataclass
class DemoParcelAtKiosk:
    parcel: seed.DemoParcel
    door: int


@dataclass
class DemoSystem:
    """The parts started after the cloud: kiosk, simulated bank, the person at the doors."""

    options: DemoOptions
    folder: Path
    database_url: str
    broker_url: str
    settings: CloudSettings
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    bank: SimulatedBank | None = None
    daemon: Daemon | None = None
    kiosk_id: str = ""
    ui: Callable[[Daemon, FlowContext], Awaitable[None]] | None = None
    """The kiosk's touchscreen hook (`kiosk.ui.runner.daemon_ui`); it starts once seeded."""
    parcels: list[DemoParcelAtKiosk] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _kiosk_stop: asyncio.Event = field(default_factory=asyncio.Event)
    _kiosk_task: asyncio.Task[None] | None = None
    _seeded: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kiosk_folder(self) -> Path:
        return self.folder / "kiosk"

    async def start(self, base: str) -> None:
        """Seeds the cloud, starts the kiosk on simulated doors, deposits parcels, prints all."""
        await seed.create_locations(base)
        await seed.add_demo_staff(self.database_url)
        self.kiosk_id, layout = await provision_demo_kiosk(
            database_url=self.database_url,
            settings=self.settings,
            folder=self.kiosk_folder,
            broker_url=self.broker_url,
        )
        bank = self.bank = SimulatedBank(layout)
        bank.start()
        write_hardware_config(self.kiosk_folder / "kiosk.toml", bank)
        person = shut_doors_after(bank, self.options.close_after_s, lambda line: self.out(line))
        self.own(asyncio.create_task(person, name="demo-person"))
        await self._start_kiosk()
        self.parcels = await self._deposit_parcels(base)
        self._print(base, self.parcels)
        self._seeded.set()  # the touchscreen comes up now, with the codes to try on it

    async def stop(self) -> None:
        """Stops the kiosk, the person and the simulated bank. Idempotent."""
        if self._kiosk_task is not None:
            self._kiosk_stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kiosk_task, 15)
            self._kiosk_task = None
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self.bank is not None:
            self.bank.stop()
            self.bank = None

    def own(self, task: asyncio.Task[Any]) -> None:
        """Makes ``task`` part of the demo: `stop` cancels it."""
        self._tasks.append(task)

    def scan(self, code: str) -> None:
        """The simulated scanner sends ``code`` to the kiosk."""
        if self.bank is not None:
            self.bank.scanner.scan(code)

    def home_note(self) -> str:
        """The demo's line on the kiosk's home screen: what to try, with which code.

        Only codes and barcodes that still work are offered: a parcel's state is read from the
        kiosk's store (a code used at the kiosk, a parcel already dropped off, drop out).
        """
        waiting = [i for i in self.parcels if self._still(i) == "deposited"]
        reserved = [i for i in self.parcels if self._still(i) == "reserved"]
        codes = sorted({i.parcel.pickup_code for i in waiting})
        lines = (
            ["Demo: pick up with code " + " or ".join(codes) + " (1, then type it)."]
            if codes
            else ["Demo: every parcel has been picked up."]
        )
        if reserved:
            lines.append(f"Driver (2): scan or type barcode {reserved[0].parcel.package_id}.")
        lines.append(f"Staff PIN {seed.DEMO_STAFF_PIN}. Ctrl+C stops the demo.")
        return "\n".join(lines)

    def _still(self, item: DemoParcelAtKiosk) -> str:
        try:
            status = self._kiosk_status(item.parcel.allocation_id)
        except Exception:  # the store closing as the demo stops: the seed's view will do
            status = None
        return item.parcel.status if status is None else status

    def describe_scan(self, outcome: ScanOutcome) -> None:
        """Prints what a scan did, headless (the touchscreen shows it otherwise)."""
        if not self._seeded.is_set():
            return  # the seeding drivers' own scans: the printout lists their parcels
        if outcome.refusal is not None:
            self.out(f"scan refused ({outcome.refusal}): {outcome.message}")
        elif outcome.error is not None:
            self.out(f"scan failed: {outcome.error}")
        else:
            self.out(f"scan opened door(s) {', '.join(map(str, outcome.doors))}")

    # Start-up steps

    async def _start_kiosk(self) -> None:
        ui = None if self.ui is None else self._once_seeded(self.ui)
        daemon = self.daemon = Daemon(load_config(self.kiosk_folder / "kiosk.toml"), ui=ui)
        if ui is None:
            daemon.on_scan_outcome = self.describe_scan
        ready: list[str] = []
        task = self._kiosk_task = asyncio.create_task(
            daemon.run(self._kiosk_stop, on_ready=ready.append), name="demo-kiosk"
        )
        deadline = time.monotonic() + 30
        while not ready:
            if task.done():
                task.result()
                raise DemoError("the kiosk daemon stopped at boot")
            if time.monotonic() > deadline:
                raise DemoError("the kiosk daemon did not become ready in 30 s")
            await asyncio.sleep(0.05)

    def _once_seeded(
        self, ui: Callable[[Daemon, FlowContext], Awaitable[None]]
    ) -> Callable[[Daemon, FlowContext], Awaitable[None]]:
        # The drivers' scans while seeding go to the daemon's own scan loop, not to a driver
        # screen; the touchscreen appears once the parcels are in.
        async def run(daemon: Daemon, ctx: FlowContext) -> None:
            await self._seeded.wait()
            await ui(daemon, ctx)

        return run

    async def _deposit_parcels(self, base: str) -> list[DemoParcelAtKiosk]:
        reserved = await seed.reserve_parcels(base)
        assert self.bank is not None
        deadline = time.monotonic() + SEED_TIMEOUT_S
        for parcel in reserved:
            if not parcel.deposit:
                continue
            await _until(
                lambda p=parcel: self._kiosk_status(p.allocation_id) == "reserved",  # type: ignore[misc]
                deadline,
                f"the kiosk never learnt of {parcel.package_id}",
            )
            self.bank.scanner.scan(parcel.package_id)  # a driver scans the parcel's barcode
        result = []
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for parcel in reserved:
                want = "deposited" if parcel.deposit else "reserved"
                body: dict[str, Any] = {}

                async def synced(p: seed.DemoParcel = parcel, want: str = want) -> bool:
                    nonlocal body
                    body = await seed.get_allocation(http, p.allocation_id)
                    return bool(body["status"] == want)

                await _until_async(synced, deadline, f"{parcel.package_id} never became {want}")
                parcel.status = body["status"]
                parcel.pickup_code = body.get("pickup_code") or parcel.pickup_code
                parcel.locker_number = int(body["door_number"])
                result.append(DemoParcelAtKiosk(parcel, parcel.locker_number))
        # Let the person shut the last door before the user starts.
        await _until(self._all_shut, deadline, "a door stayed open")
        return result

    def _kiosk_status(self, allocation_id: str) -> str | None:
        """The allocation's status in the kiosk's store, as the running daemon has it."""
        ctx = None if self.daemon is None else self.daemon.ctx
        if ctx is None:
            return None
        allocation = find_allocation(ctx.store.db, allocation_id)
        return None if allocation is None else str(allocation.status)

    def _all_shut(self) -> bool:
        assert self.bank is not None
        return not any(self.bank.door(d.number).is_open for d in self.bank.layout.doors)

    def _print(self, base: str, parcels: list[DemoParcelAtKiosk]) -> None:
        assert self.bank is not None
        carrier = f"-H 'Authorization: Bearer {seed.DEMO_CARRIER_KEY}'"
        lines = [
            "",
            "Parcel-locker fleet (demo): cloud, broker, kiosk and simulated doors",
            f"  API        {base}/api/v1    OpenAPI docs: {base}/docs",
            f"  keys       carrier: {seed.DEMO_CARRIER_KEY}   admin: {seed.DEMO_ADMIN_KEY}",
            f"  console    {base}/ops/   operator: {seed.DEMO_OPERATOR}"
            f" / {seed.DEMO_OPERATOR_PASSWORD}",
            f"  broker     {self.broker_url}",
            f"  location   {seed.DEMO_LOCATION} ({len(self.bank.layout.doors)} doors)"
            " and two more nearby",
            f"  kiosk      {self.kiosk_id}: {self.kiosk_folder}/kiosk.toml",
            f"  doors      simulated Kerong boards on {self.bank.port}",
            f"  scanner    {self.bank.scanner_port} (type `scan CODE` here to scan)",
            f"  data       {self.folder}",
            "",
            "  parcels:",
        ]
        for item in parcels:
            p = item.parcel
            lines.append(
                f"    {p.package_id} for {p.customer_id:<6} locker {p.locker_number:>2}  "
                f"{p.status:<10} pickup code {p.pickup_code}  allocation {p.allocation_id}"
            )
        code = next(i.parcel.pickup_code for i in parcels if i.parcel.status == "deposited")
        lines += [
            "",
            "  try:",
            f"    scan {code}          (a QR-code pickup at the kiosk: its door opens)",
            f"    curl -s {carrier} '{base}/api/v1/allocations/{parcels[0].parcel.allocation_id}'",
            "",
            f"READY {base}",
        ]
        self.out("\n".join(lines))


async def _until(check: Callable[[], bool], deadline: float, message: str) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(message)
        await asyncio.sleep(0.1)


async def _until_async(check: Callable[[], Awaitable[bool]], deadline: float, message: str) -> None:
    while not await check():
        if time.monotonic() > deadline:
            raise DemoError(message)
        await asyncio.sleep(0.1)
