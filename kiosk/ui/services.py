"""What the touchscreen UI is given: the kiosk's flows and a few probes of the daemon around it."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Protocol

from kiosk.flows.context import FlowContext

SCREEN_800x480 = (100, 30)
"""The 800x480 px touchscreen in terminal cells (an 8x16 px font)."""
SCREEN_1024x600 = (128, 37)
"""The 1024x600 px touchscreen in terminal cells (an 8x16 px font)."""


class SyncState(Protocol):
    """What the UI reads of `kiosk.sync.client.SyncStatus`."""

    @property
    def connected(self) -> bool: ...


def no_sync() -> SyncState | None:
    """The sync probe of a kiosk without cloud sync: there is nothing to be offline from."""
    return None


def boards_fine() -> str | None:
    """The board probe of a kiosk that has no door monitor to ask (tests): nothing wrong."""
    return None


def no_note() -> str:
    """No note on the home screen (a kiosk in service)."""
    return ""


def door_number(door: int) -> str:
    """Doors named by their number, as the flows' own messages name them."""
    return str(door)


def pin_checker(pin: str | None) -> Callable[[str], bool]:
    """A staff PIN check against one configured PIN; with none, no PIN is accepted.

    The comparison takes the same time whatever the typed PIN, so timing tells nothing.
    """

    def check(typed: str) -> bool:
        if not pin:
            return False
        return hmac.compare_digest(typed.encode(), pin.encode())

    return check


@dataclass(frozen=True, slots=True)
class UiServices:
    """Everything the UI works with, so tests and the daemon build it the same way.

    Attributes:
        ctx: The kiosk's flows context (store, door bank, clock, rules).
        check_staff_pin: True for the staff PIN.
        sync_status: The cloud sync's status, or None without sync (no banner then).
        door_name: How the kiosk names a door on screen (``5``, or ``B5`` on a lettered bank).
        idle_timeout_s: Seconds without a touch or key before the UI goes back home.
        refresh_s: Seconds between refreshes of live door states (staff grid, a return's door).
        driver_id: The driver id recorded for drop-offs started at the touchscreen.
        staff_id: The staff id recorded for collections and maintenance at the touchscreen.
        board_error: What is wrong with the lock boards (the door monitor's health), or None
            while they answer; the staff screen shows it.
        home_note: A line under the home screen's choices (the demo shows its pickup codes
            there); empty for none.
        on_quit: What Ctrl+C or Ctrl+Q at a keyboard does: stop the kiosk (the demo, or a
            daemon run by hand). None: the keys do nothing, so a keyboard plugged into a kiosk
            in service cannot close its screen.
        time_zone: The location's time zone, for the clock (``kiosk.time_zone``).

    Raises:
        ValueError: on construction, for a non-positive timeout or refresh period.
    """

    ctx: FlowContext
    check_staff_pin: Callable[[str], bool]
    sync_status: Callable[[], SyncState | None] = no_sync
    door_name: Callable[[int], str] = door_number
    idle_timeout_s: float = 60.0
    refresh_s: float = 1.0
    driver_id: str = "touchscreen"
    staff_id: str = "staff-touchscreen"
    board_error: Callable[[], str | None] = boards_fine
    home_note: Callable[[], str] = no_note
    on_quit: Callable[[], None] | None = None
    time_zone: tzinfo = UTC

    def __post_init__(self) -> None:
        if self.idle_timeout_s <= 0 or self.refresh_s <= 0:
            raise ValueError("idle_timeout_s and refresh_s must be positive")

    def locker(self, door: int) -> str:
        """``Locker 5``: a door as a person at the kiosk reads it."""
        return f"Locker {self.door_name(door)}"
