"""The kiosk daemon: store, door bank and scanner from the configuration, then the door monitor
and the scanner loop until it is told to stop.

Boot order matters (``docs/kiosk.md``, "The daemon"):

1. open the store (migrations, identity and code-secret check) and sync the door layout;
2. build the door bank and run boot reconciliation, which settles whatever a crash or a power cut
   interrupted from what the sensors read now, and gives the monitor its baseline; a bank that
   does not answer at boot does not stop the daemon: the monitor runs reconciliation when the
   bank first answers, and until then flows refuse (``boards_down``) before changing anything;
3. start the door monitor on that baseline, and open the scanner;
4. with a ``[sync]`` table, start cloud sync (`kiosk.sync.client.KioskSync`) beside the monitor:
   it connects in the background, and nothing it does, or fails to do, stops the daemon;
5. announce readiness (`Daemon.run`'s ``on_ready``; the CLI prints one ``ready`` line).

Nothing is pulsed before reconciliation has finished, so a restart never acts on a stale picture
of the doors. A scanned line is handled to the end (its doors pulsed and recorded) before the next
is read: one scanner, one person at a time. A line that parses as a pickup code is a QR pickup;
anything else is a parcel barcode for a driver drop-off. A refused scan is logged with its
reason; an unexpected error in one scan is logged and the loop carries on, so a bad scan can never
stop the door monitor. If the monitor itself dies (the store failed), the daemon stops with that
error and its supervisor (systemd) restarts it, and reconciliation picks up from the store.

Pickup codes are secrets: they are never logged (the flows audit a short reference to the keyed
hash instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from kiosk.config import KioskConfig, SyncConfig
from kiosk.flows.context import FlowContext
from kiosk.flows.drop_off import drop_off
from kiosk.flows.pickup import pick_up
from kiosk.flows.refusals import FlowRefused
from kiosk.hardware.config import create_door_bank
from kiosk.hardware.door_bank import DoorBank
from kiosk.hardware.errors import LockBoardError, PortError
from kiosk.hardware.scanner import SerialScanner
from kiosk.hardware.serial_link import SerialPort, open_serial_port
from kiosk.monitor import DoorMonitor
from kiosk.reconcile import Reconciliation, reconcile
from kiosk.store import doors
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store, StoreError
from kiosk.sync.client import KioskSync
from shared.backoff import backoff_delay
from shared.cancellation import cancel_and_wait
from shared.clock import Clock, SystemClock
from shared.codes import InvalidCode, PickupCode

log = logging.getLogger(__name__)

SCANNER_MAX_BACKOFF_S = 10.0


class DaemonError(RuntimeError):
    """The daemon cannot start or keep running; the message says what to fix, on one line."""


class ScanKind(StrEnum):
    PICKUP = "pickup"
    DROP_OFF = "drop_off"


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """What one scanned line did (for logs and tests).

    Attributes:
        kind: Pickup (the line is a pickup code) or drop-off (anything else).
        doors: The doors opened (or commanded), empty when refused or failed.
        refusal: The flow's machine-readable refusal, when refused.
        error: The unexpected error's type and text, when the scan failed.
    """

    kind: ScanKind
    doors: tuple[int, ...] = ()
    refusal: str | None = None
    error: str | None = None
    message: str | None = None  # the refusal's words for the person (never holds a code)


def scan_kind(line: str) -> ScanKind:
    """A pickup code (as the keypad would accept it) is a pickup; anything else a barcode."""
    try:
        PickupCode.parse(line)
    except InvalidCode:
        return ScanKind.DROP_OFF
    return ScanKind.PICKUP


async def handle_scan(ctx: FlowContext, line: str, *, driver_id: str) -> ScanOutcome:
    """Runs the flow a scanned line calls for. Never raises (but for cancellation).

    Refusals are logged at INFO with their reason, unexpected errors at ERROR with a traceback.
    """
    kind = scan_kind(line)
    # A pickup code is a secret: it is never logged. Barcodes are printed on the parcel.
    shown = "a pickup code" if kind is ScanKind.PICKUP else f"barcode {line!r}"
    try:
        if kind is ScanKind.PICKUP:
            pickup = await pick_up(ctx, line, via="scanner")
            opened = pickup.doors
            not_opened = [o.door for o in pickup.openings if not o.opened]
        else:
            result = await drop_off(ctx, line, driver_id=driver_id)
            opened = (result.door,)
            not_opened = [] if result.opening.opened else [result.door]
    except FlowRefused as refused:
        log.info("scan of %s refused (%s): %s", shown, refused.refusal, refused.message)
        return ScanOutcome(kind, refusal=refused.refusal.value, message=refused.message)
    except Exception as error:
        log.exception("scan of %s failed", shown)
        return ScanOutcome(kind, error=f"{type(error).__name__}: {error}")
    log.info(
        "scan of %s: %s door(s) %s%s",
        shown,
        kind,
        ", ".join(map(str, opened)),
        f" (not seen open: {', '.join(map(str, not_opened))})" if not_opened else "",
    )
    return ScanOutcome(kind, doors=tuple(opened))


def open_store(config: KioskConfig) -> Store:
    """Opens (creating on first boot) the store and syncs the door layout into it.

    Raises:
        DaemonError: the database cannot be used (wrong kiosk, changed secret, bad path).
    """
    try:
        config.database.parent.mkdir(parents=True, exist_ok=True)
        hasher = CodeHasher(config.require_secret())
        store = Store.open(
            config.database, hasher, KioskIdentity(config.location_id, config.kiosk_id)
        )
    except (StoreError, OSError, ValueError) as error:
        raise DaemonError(str(error)) from None
    try:
        with store.transaction() as db:
            added = doors.sync_layout(db, config.layout, SystemClock().now())
    except Exception:
        store.close()
        raise
    if added:
        log.info("doors added to the store: %s", ", ".join(map(str, added)))
    return store


class Daemon:
    """The running kiosk. Build it with the configuration; `run` until stopped.

    Args:
        config: The validated configuration (with its code secret read).
        clock: Where times come from (the system clock unless a test gives one).
    """

    def __init__(
        self,
        config: KioskConfig,
        *,
        clock: Clock | None = None,
        ui: Callable[[Daemon, FlowContext], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        # The touchscreen UI (`kiosk.ui.runner.run_ui`), a task whose end never stops the daemon;
        # while it runs it may take the scans (`scan_handler`).
        self.ui = ui
        self.scan_handler: Callable[[str], None] | None = None
        # Told what each scan the daemon handled itself did (the headless demo prints it).
        self.on_scan_outcome: Callable[[ScanOutcome], None] | None = None
        self.clock = clock or SystemClock()
        self.ctx: FlowContext | None = None
        self.monitor: DoorMonitor | None = None
        self.reconciliation: Reconciliation | None = None
        self.sync: KioskSync | None = None
        self.scans = 0

    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        """Boots, then monitors doors and handles scans until ``stop`` is set or cancelled.

        Everything opened is closed on the way out, however it ends.

        Raises:
            DaemonError: the store, the door bank or the scanner cannot be used at boot.
            Exception: the door monitor died (the store failed); the daemon stopped with it.
        """
        config = self.config
        store = open_store(config)
        bank: DoorBank | None = None
        tasks: list[asyncio.Task[object]] = []
        sync_task: asyncio.Task[None] | None = None
        ui_task: asyncio.Task[None] | None = None
        try:
            try:
                bank = create_door_bank(config.doors)
            except (ImportError, OSError, ValueError) as error:
                raise DaemonError(f"cannot build the door bank: {error}") from None
            ctx = self.ctx = FlowContext(store, bank, self.clock, config.rules)
            baseline = None
            try:
                report = await reconcile(ctx)
            except LockBoardError as error:
                # A board absent at boot (unplugged adapter, no power) must not stop the
                # scanner, the screen and sync: the monitor reconciles once the bank answers,
                # and until then every flow refuses before changing anything.
                log.warning(
                    "the door bank does not answer at boot (%s); the kiosk runs without it and "
                    "reconciles when it answers",
                    error,
                )
            else:
                self.reconciliation = report
                baseline = report.states
                _log_reconciliation(report)
            self.monitor = DoorMonitor(
                ctx,
                interval_s=config.monitor.poll_interval_s,
                max_backoff_s=config.monitor.max_backoff_s,
            )
            tasks.append(asyncio.create_task(self.monitor.run(baseline), name="monitor"))
            if config.sync is not None:
                # Not among the tasks whose end stops the daemon: sync's failures never stop
                # the monitor or the flows (invariant 6).
                sync_task = asyncio.create_task(self._run_sync(ctx, config.sync), name="sync")
            if self.ui is not None:
                ui_task = asyncio.create_task(self._run_ui(ctx, self.ui), name="ui")
            scanner_where = "no scanner"
            if config.scanner is not None:
                opened = asyncio.Event()
                scan_task = asyncio.create_task(self._scan_loop(ctx, opened), name="scanner")
                tasks.append(scan_task)
                await _opened_or_failed(opened, scan_task)
                scanner_where = f"scanner on {config.scanner.port}"
            stop_task = asyncio.create_task((stop or asyncio.Event()).wait(), name="stop")
            tasks.append(stop_task)
            sync_where = (
                ""
                if config.sync is None
                else f", sync with {config.sync.broker_host}:{config.sync.broker_port}"
            )
            message = (
                f"ready: location {config.location_id}, kiosk {config.kiosk_id}, "
                f"{len(config.layout)} doors, monitor every {config.monitor.poll_interval_s} s, "
                f"{scanner_where}{sync_where}"
            )
            log.info("%s", message)
            if on_ready is not None:
                on_ready(message)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop_task:
                    task.result()  # raises what killed it
                    raise RuntimeError(f"the {task.get_name()} task ended on its own")
            log.info("stopping")
        finally:
            if sync_task is not None:
                tasks.append(sync_task)
            if ui_task is not None:
                tasks.append(ui_task)
            try:
                await cancel_and_wait(tasks)
            finally:
                if bank is not None:
                    with contextlib.suppress(Exception):
                        await bank.aclose()
                store.close()

    async def _run_sync(self, ctx: FlowContext, config: SyncConfig) -> None:
        """Runs cloud sync until cancelled; whatever happens to it is logged, never raised."""
        try:
            self.sync = KioskSync(
                ctx,
                config,
                board_error=lambda: ctx.bank_health.unavailable,
            )
            await self.sync.run()
        except Exception:
            log.exception("cloud sync stopped; the kiosk carries on without it")

    async def _run_ui(
        self, ctx: FlowContext, ui: Callable[[Daemon, FlowContext], Awaitable[None]]
    ) -> None:
        """Runs the touchscreen UI until cancelled; its failures are logged, never raised."""
        try:
            await ui(self, ctx)
        except Exception:
            log.exception("the touchscreen UI stopped; the kiosk carries on without it")
        finally:
            self.scan_handler = None

    def _outbox_changed(self) -> None:
        if self.sync is not None:
            self.sync.outbox_changed.set()

    async def _scan_loop(self, ctx: FlowContext, opened: asyncio.Event) -> None:
        """Reads scans for ever; reopens the scanner (with backoff) if it fails after boot.

        Raises:
            DaemonError: the scanner port cannot be opened at boot.
        """
        config = self.config.scanner
        assert config is not None
        loop = asyncio.get_running_loop()

        def opener(port: str, baudrate: int, timeout: float) -> SerialPort:
            handle = open_serial_port(port, baudrate, timeout)
            loop.call_soon_threadsafe(opened.set)
            return handle

        scanner = SerialScanner(
            config.port,
            baudrate=config.baudrate,
            max_code_length=config.max_code_length,
            opener=opener,
        )
        failures = 0
        while True:
            try:
                async with contextlib.aclosing(scanner.codes()) as codes:
                    async for line in codes:
                        failures = 0
                        self.scans += 1
                        if self.scan_handler is not None:
                            self.scan_handler(line)  # the UI runs the flow and shows it
                        else:
                            outcome = await handle_scan(
                                ctx, line, driver_id=self.config.scanner_driver_id
                            )
                            if self.on_scan_outcome is not None:
                                self.on_scan_outcome(outcome)
                        self._outbox_changed()
            except PortError as error:
                if not opened.is_set():
                    raise DaemonError(str(error)) from None
                failures += 1
                # Half the ceiling at least: a scanner unplugged for good is not hammered.
                delay = backoff_delay(failures, first=0.5, longest=SCANNER_MAX_BACKOFF_S, floor=0.5)
                log.warning("scanner failed (%s); reopening in %.1f s", error, delay)
                await asyncio.sleep(delay)


async def _opened_or_failed(opened: asyncio.Event, task: asyncio.Task[object]) -> None:
    """Waits for ``opened`` or for ``task`` to end, raising what ended the task."""
    waiter = asyncio.create_task(opened.wait())
    try:
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        task.result()


def _log_reconciliation(report: Reconciliation) -> None:
    log.info(
        "boot reconciliation: %d operation(s) found open, %d completed, %d abandoned, "
        "%d door(s) found open without a command, %d audit entr(ies) closed as interrupted",
        len(report.opened),
        len(report.completed),
        len(report.abandoned),
        len(report.tampered),
        report.closed_audit_entries,
    )
