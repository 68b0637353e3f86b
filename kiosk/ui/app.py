"""The kiosk's touchscreen app, and `make_app`, which `run_ui` and the tests share.

Flows run in workers on the app's event loop. Whatever a flow raises besides `FlowRefused` is
logged with its traceback and the person sees a friendly message, then home: the screen never
shows a stack trace. Input from outside (the daemon's scanner loop) arrives as a `Scanned`
message, posted with `KioskApp.scan`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar, TypeVar

from textual import events
from textual.app import App
from textual.binding import Binding, BindingType

from kiosk.flows import pickup
from kiosk.flows.refusals import FlowRefused
from kiosk.store import people
from kiosk.ui.courier_sign_in import CourierCodeScreen
from kiosk.ui.driver import DriverScreen
from kiosk.ui.home import HomeScreen
from kiosk.ui.messages import Scanned
from kiosk.ui.notice import FAILURE_TEXT, NoticeScreen
from kiosk.ui.pickup import PickupScreen
from kiosk.ui.pickup_result import PickupResultScreen
from kiosk.ui.returns import ReturnCodeScreen
from kiosk.ui.services import UiServices
from kiosk.ui.staff_pin import StaffPinScreen
from shared.codes import InvalidCode, PickupCode

log = logging.getLogger(__name__)

T = TypeVar("T")

_ACTIVITY = (events.Key, events.MouseDown, events.MouseUp, events.Click)


class KioskApp(App[None]):
    """Home, then one screen per step of a flow; back home after ``idle_timeout_s`` untouched."""

    CSS_PATH = Path(__file__).with_name("kiosk.tcss")
    TITLE = "Parcel locker"
    ENABLE_COMMAND_PALETTE = False
    # Textual's own Ctrl+Q quits the app and its Ctrl+C tells how to; here both ask the kiosk
    # to stop (`UiServices.on_quit`) or, in service, do nothing.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "stop_kiosk", show=False, priority=True),
        Binding("ctrl+c", "stop_kiosk", show=False, priority=True),
    ]

    def __init__(self, services: UiServices) -> None:
        super().__init__()
        self.services = services
        self.last_activity = time.monotonic()
        self.failures = 0
        # Who is signed in at the staff screens (issue 11: their own PIN names them); the
        # audit log records what they do under this id.
        self.staff_id = services.staff_id

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())
        self.set_interval(min(1.0, self.services.idle_timeout_s / 4), self.home_if_idle)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, _ACTIVITY):
            self.last_activity = time.monotonic()
        await super().on_event(event)

    def action_stop_kiosk(self) -> None:
        if self.services.on_quit is not None:
            self.services.on_quit()

    def _handle_exception(self, error: Exception) -> None:
        # A bug in a screen's own code ends the app (the daemon's supervisor starts a new one).
        # Textual would print the traceback on the terminal as the app leaves it, that is, on
        # the customer's screen: it goes to the log instead. (Textual has no public hook for
        # this; a test in tests/kiosk_ui/test_runner.py fails if the private one changes.)
        log.error("the touchscreen UI failed", exc_info=error)
        super()._handle_exception(error)
        self._exit_renderables.clear()

    def home_if_idle(self) -> None:
        """Goes home when nobody has touched the screen for ``idle_timeout_s``."""
        idle = time.monotonic() - self.last_activity
        if idle >= self.services.idle_timeout_s and not isinstance(self.screen, HomeScreen):
            self.go_home()

    def go_home(self) -> None:
        """Back to the home screen, whatever is on top of it."""
        self.last_activity = time.monotonic()
        self.staff_id = self.services.staff_id  # home signs staff out
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if not isinstance(self.screen, HomeScreen):
            self.pop_screen()

    def start(self, choice: str) -> None:
        """Opens a flow from home: ``pickup``, ``driver``, ``return`` or ``staff``."""
        if choice == "driver" and people.live_courier_ids(self.services.ctx.store.db):
            # Couriers are provisioned here (issue 11): a driver signs in with their own code.
            self.push_screen(CourierCodeScreen())
            return
        screens = {
            "pickup": PickupScreen,
            "driver": DriverScreen,
            "return": ReturnCodeScreen,
            "staff": StaffPinScreen,
        }
        self.push_screen(screens[choice]())

    async def attempt(self, work: Callable[[], Awaitable[T]]) -> T | FlowRefused | None:
        """Runs one flow call: its result, its refusal, or None when it failed unexpectedly.

        An unexpected failure is logged with its traceback; the person sees `FAILURE_TEXT`
        over the home screen.
        """
        try:
            return await work()
        except FlowRefused as refused:
            return refused
        except Exception:
            self.failures += 1
            log.exception("a flow failed at the touchscreen; showing a friendly message")
            self.go_home()
            self.push_screen(NoticeScreen("Sorry", FAILURE_TEXT, again=False))
            return None

    async def pick_up(self, code: str, *, via: str) -> None:
        """Runs a pickup and shows its doors, or why not (over the current screen)."""
        ctx = self.services.ctx
        outcome = await self.attempt(lambda: pickup.pick_up(ctx, code, via=via))
        if isinstance(outcome, FlowRefused):
            self.push_screen(NoticeScreen("Code not accepted", outcome.message))
        elif outcome is not None:
            self.push_screen(PickupResultScreen(outcome))

    def scan(self, line: str) -> None:
        """Hands a scanned line to the UI (called by the daemon's scanner loop)."""
        self.post_message(Scanned(line))

    async def on_scanned(self, message: Scanned) -> None:
        self.last_activity = time.monotonic()
        try:
            PickupCode.parse(message.line)
        except InvalidCode:
            current = self.screen
            if isinstance(current, DriverScreen):
                driver = current
            else:
                self.go_home()
                driver = DriverScreen()
                await self.push_screen(driver)
            driver.scan(message.line)
            return
        self.go_home()
        self.run_worker(self.pick_up(message.line, via="scanner"), group="flow")


def make_app(services: UiServices) -> KioskApp:
    """The touchscreen app over ``services``; the daemon and the tests both build it here."""
    return KioskApp(services)
