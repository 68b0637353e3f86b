"""Running the touchscreen UI inside the daemon, so that a crash of the UI never stops it.

The app runs on the daemon's event loop as one task. When it ends (a bug in a screen, the
terminal gone), the error is logged and a fresh app starts after a pause; the door monitor,
the scanner loop and sync never notice. While an app is up, scans are routed to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kiosk.flows.context import FlowContext
from kiosk.store.door_labels import door_namer
from kiosk.ui.app import KioskApp, make_app
from kiosk.ui.services import SyncState, UiServices, no_note, pin_checker

if TYPE_CHECKING:
    from kiosk.daemon import Daemon

log = logging.getLogger(__name__)

EXIT_GRACE_S = 5.0
"""How long a stopping UI gets to leave the terminal as it found it."""


async def run_ui(
    build: Callable[[], KioskApp],
    *,
    on_app: Callable[[KioskApp | None], None] = lambda app: None,
    restart_delay_s: float = 2.0,
    headless: bool = False,
) -> None:
    """Runs apps from ``build`` one after another until cancelled; never raises otherwise.

    Args:
        build: Makes a fresh app (`kiosk.ui.app.make_app` over the daemon's services).
        on_app: Told the running app, and None while there is none (the daemon routes scans).
        restart_delay_s: Pause before a new app after one ended.
        headless: Run the apps without a terminal (tests).
    """
    while True:
        app: KioskApp | None = None
        try:
            app = build()
            on_app(app)
            await _run_until_cancelled(app, headless=headless)
            log.error("the touchscreen UI stopped (return code %s); restarting", app.return_code)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the touchscreen UI crashed; restarting it")
        finally:
            on_app(None)
        await asyncio.sleep(restart_delay_s)


async def _run_until_cancelled(app: KioskApp, *, headless: bool) -> None:
    """Runs ``app``; when cancelled, asks it to exit and waits, so the terminal is restored.

    (Cancelling `App.run_async` outright can leave the terminal in the app's raw mode.)
    """
    running = asyncio.ensure_future(app.run_async(headless=headless))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        app.exit()
        await asyncio.wait([running], timeout=EXIT_GRACE_S)
        if not running.done():
            running.cancel()
        raise


def daemon_ui(
    *,
    staff_pin: str | None,
    idle_timeout_s: float = 60.0,
    home_note: Callable[[], str] = no_note,
    on_quit: Callable[[], None] | None = None,
) -> Callable[[Daemon, FlowContext], Awaitable[None]]:
    """The daemon's ``ui`` hook: the touchscreen over the daemon's flows, sync and scanner.

    Args:
        staff_pin: The staff PIN (None: the staff screen accepts no PIN).
        idle_timeout_s: Seconds untouched before the UI goes back home.
        home_note: A line for the home screen (`UiServices.home_note`).
        on_quit: What Ctrl+C or Ctrl+Q does (`UiServices.on_quit`).
    """

    async def run(daemon: Daemon, ctx: FlowContext) -> None:
        def sync_status() -> SyncState | None:
            return None if daemon.sync is None else daemon.sync.status

        def board_error() -> str | None:
            return ctx.bank_health.unavailable

        def build() -> KioskApp:
            return make_app(
                UiServices(
                    ctx,
                    pin_checker(staff_pin),
                    sync_status=sync_status,
                    board_error=board_error,
                    idle_timeout_s=idle_timeout_s,
                    home_note=home_note,
                    on_quit=on_quit,
                    door_name=door_namer(ctx.store),
                    time_zone=ZoneInfo(daemon.config.time_zone),
                )
            )

        def on_app(app: KioskApp | None) -> None:
            daemon.scan_handler = None if app is None else app.scan

        await run_ui(build, on_app=on_app)

    return run
