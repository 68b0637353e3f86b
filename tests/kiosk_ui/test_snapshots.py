"""SVG snapshots of the main screens at 800x480 (100x30 cells), and of home and the pickup keypad
at 1024x600 (128x37), with the clock frozen at START.

After a deliberate change of the look: ``pytest tests/kiosk_ui --snapshot-update``, then look.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from kiosk.ui.app import KioskApp
from kiosk.ui.services import SCREEN_1024x600
from shared.states import AllocationStatus
from tests.flows.conftest import Kiosk
from tests.kiosk_ui.conftest import SIZE, STAFF_PIN

Snap = Callable[..., bool]


async def steady(pilot: Pilot[Any]) -> None:
    """Stops text cursors blinking (shown steadily), so a slow run cannot catch one hidden."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_home(snap_compare: Snap, build_app: Callable[..., KioskApp]) -> None:
    assert snap_compare(build_app(), terminal_size=SIZE)


def test_pickup_keypad(snap_compare: Snap, build_app: Callable[..., KioskApp]) -> None:
    async def type_some(pilot: Pilot[Any]) -> None:
        await pilot.press("1", "a", "b", "c")
        await steady(pilot)

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=type_some)


def test_home_1024x600(snap_compare: Snap, build_app: Callable[..., KioskApp]) -> None:
    assert snap_compare(build_app(), terminal_size=SCREEN_1024x600)


def test_pickup_keypad_1024x600(snap_compare: Snap, build_app: Callable[..., KioskApp]) -> None:
    async def type_some(pilot: Pilot[Any]) -> None:
        await pilot.press("1", "a", "b", "c")
        await steady(pilot)

    assert snap_compare(build_app(), terminal_size=SCREEN_1024x600, run_before=type_some)


def test_pickup_result(
    snap_compare: Snap, kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    kiosk.allocate("a2", code="ABC234", door=6, status=AllocationStatus.DEPOSITED)

    async def pick_up(pilot: Pilot[Any]) -> None:
        await pilot.press("1", *"ABC234", "enter")
        await pilot.app.workers.wait_for_complete()
        await steady(pilot)

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=pick_up)


def test_driver(snap_compare: Snap, kiosk: Kiosk, build_app: Callable[..., KioskApp]) -> None:
    kiosk.allocate("p1", door=4, barcode="PKG-1")

    async def drop(pilot: Pilot[Any]) -> None:
        await pilot.press("2", *"PKG-1", "enter")
        await pilot.app.workers.wait_for_complete()
        await steady(pilot)

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=drop)


def test_staff_grid(snap_compare: Snap, kiosk: Kiosk, build_app: Callable[..., KioskApp]) -> None:
    kiosk.allocate("p1", door=3, code="ABC234", status=AllocationStatus.DEPOSITED)

    async def sign_in(pilot: Pilot[Any]) -> None:
        await pilot.press("4", *STAFF_PIN, "enter")
        await pilot.app.workers.wait_for_complete()
        await steady(pilot)

    assert snap_compare(build_app(refresh_s=60), terminal_size=SIZE, run_before=sign_in)
