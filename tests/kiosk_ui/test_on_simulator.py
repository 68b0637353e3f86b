"""The touchscreen over the production stack: the serial bank talking 8A/80 or Kerong to the
lock-board simulator on a pseudo-terminal, with the real door monitor polling (``sim_kiosk``).

Every test asserts what happened physically (the simulated door opened, got a pulse, or did not)
and in the store (the parcel's status, the door's fault), not only what the screen says: a door
is shut by hand on the simulator, and only the monitor seeing it on the wire moves the parcel on.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from kiosk.store import allocations
from kiosk.store.records import AllocationKind, EventType
from kiosk.ui.app import KioskApp
from kiosk.ui.driver import DriverScreen
from kiosk.ui.home import HomeScreen
from kiosk.ui.notice import NoticeScreen
from kiosk.ui.pickup_result import PickupResultScreen
from kiosk.ui.return_door import ReturnDoorScreen
from kiosk.ui.staff import BOARDS_DOWN, StaffScreen
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus
from tests.flows.conftest import LAYOUT, SimKiosk, wait_for
from tests.kiosk_ui.conftest import SIZE, STAFF_PIN
from tests.kiosk_ui.helpers import settle, tap, text

CODE = "ABC234"


def pulses(k: SimKiosk) -> dict[int, int]:
    """Unlock pulses each simulated door has received, for the doors that received any."""
    return {door: k.sim_door(door).pulses for door in LAYOUT if k.sim_door(door).pulses}


def door_label(app: KioskApp, door: int) -> str:
    return str(app.screen.query_one(f"#door-{door}", Button).label)


async def tap_code(pilot: Pilot[None], code: str) -> None:
    """Types ``code`` on the on-screen keypad, then OK."""
    for key in code:
        await tap(pilot, f"#key-{key}")
    await tap(pilot, "#key-ok")
    await settle(pilot)


@pytest.mark.parametrize("via", ["keypad", "scanner"])
async def test_a_pickup_opens_the_simulated_door_and_shutting_it_picks_the_parcel_up(
    sim_kiosk: SimKiosk, build_sim_app: Callable[..., KioskApp], via: str
) -> None:
    k = sim_kiosk
    k.allocate("a1", code=CODE, door=6, size=Size.LARGE, status=AllocationStatus.DEPOSITED)
    app = build_sim_app()
    async with app.run_test(size=SIZE) as pilot:
        if via == "keypad":
            await tap(pilot, "#pickup")
            await tap_code(pilot, CODE)
        else:
            app.scan(CODE)  # a QR code held to the scanner, from the home screen
            await settle(pilot)
        assert isinstance(app.screen, PickupResultScreen)
        assert text(app, "#door-text-6") == (
            "Locker 6 is open: take your parcel and close the door."
        )
        assert not app.screen.query_one("#retry-6").display
        assert k.sim_door(6).is_open
        assert pulses(k) == {6: 1}
        [used] = k.events(EventType.CODE_USED)
        assert used.payload["via"] == via
        assert k.status("a1") is AllocationStatus.DEPOSITED  # until the door is seen shut

        k.sim_door(6).close()
        await wait_for(lambda: k.status("a1") is AllocationStatus.PICKED_UP)
        assert k.door(6).status is DoorStatus.AVAILABLE
        assert k.door(6).sensor_open is False
        assert len(k.events(EventType.PARCEL_PICKED_UP)) == 1
        await tap(pilot, "#done")
        assert isinstance(app.screen, HomeScreen)


async def test_a_door_with_a_dead_solenoid_says_so_and_try_again_opens_it_once_repaired(
    sim_kiosk: SimKiosk, build_sim_app: Callable[..., KioskApp]
) -> None:
    k = sim_kiosk
    k.allocate("a1", code=CODE, door=3, status=AllocationStatus.DEPOSITED)
    k.sim_door(3).kill_solenoid()
    app = build_sim_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await tap_code(pilot, CODE)
        assert text(app, "#door-text-3") == (
            "Locker 3 did not open. Touch Try again, or ask staff for help."
        )
        assert app.screen.query_one("#door-3").has_class("-not-open")
        assert pulses(k) == {3: 1}
        assert not k.sim_door(3).is_open
        assert k.door(3).fault is not None

        k.sim_door(3).kill_solenoid(False)
        await tap(pilot, "#retry-3")
        await settle(pilot)
        assert text(app, "#door-text-3") == (
            "Locker 3 is open: take your parcel and close the door."
        )
        assert not app.screen.query_one("#retry-3").display
        assert k.sim_door(3).is_open
        assert pulses(k) == {3: 2}
        assert k.door(3).fault is None
        k.sim_door(3).close()
        await wait_for(lambda: k.status("a1") is AllocationStatus.PICKED_UP)


async def test_driver_reports_a_jammed_door_gets_another_then_drops_the_next_parcel(
    sim_kiosk: SimKiosk, build_sim_app: Callable[..., KioskApp]
) -> None:
    k = sim_kiosk
    k.allocate("p1", door=1, barcode="PKG-1")
    k.allocate("p2", door=6, size=Size.LARGE, barcode="PKG-2")
    k.sim_door(1).jam()
    app = build_sim_app()
    async with app.run_test(size=SIZE) as pilot:
        await tap(pilot, "#driver")
        assert isinstance(app.screen, DriverScreen)
        await pilot.press(*"PKG-1", "enter")
        await settle(pilot)
        assert text(app, "#drop-status").startswith(
            "Locker 1 (small) did not open. Touch Door did not open."
        )
        assert pulses(k) == {1: 1}
        assert not k.sim_door(1).is_open

        await tap(pilot, "#did-not-open")
        await settle(pilot)
        other = allocations.get_allocation(k.store.db, "p1").door
        assert other is not None
        assert other != 1
        assert LAYOUT[other].rank >= Size.SMALL.rank
        assert k.sim_door(other).is_open
        assert pulses(k) == {1: 1, other: 1}
        assert text(app, "#drop-status") == (
            f"Locker {other} ({LAYOUT[other].value}) is open: put the parcel in and close the "
            "door. (Instead of Locker 1.)\nThen scan the next parcel, or touch Finish."
        )
        assert k.door(1).status is DoorStatus.MAINTENANCE
        k.sim_door(other).set_occupied()
        k.sim_door(other).close()
        await wait_for(lambda: k.status("p1") is AllocationStatus.DEPOSITED)
        assert k.door(other).status is DoorStatus.OCCUPIED

        app.scan("PKG-2")  # the next parcel, on the same screen
        await settle(pilot)
        assert isinstance(app.screen, DriverScreen)
        assert text(app, "#drop-status").startswith("Locker 6 (large) is open")
        assert k.sim_door(6).is_open
        assert text(app, "#drop-count") == "Parcels: 2"
        k.sim_door(6).set_occupied()
        k.sim_door(6).close()
        await wait_for(lambda: k.status("p2") is AllocationStatus.DEPOSITED)

        await tap(pilot, "#finish")
        assert isinstance(app.screen, NoticeScreen)
        assert text(app, "#notice-message") == (
            f"Parcels deposited: 2\nDoors: {other}, 6\nThank you."
        )
        assert not k.sim_door(1).is_open  # the jammed door never opened


async def test_staff_grid_shows_the_simulated_doors_live_and_opens_one(
    sim_kiosk: SimKiosk, build_sim_app: Callable[..., KioskApp]
) -> None:
    k = sim_kiosk
    assert k.sim is not None
    app = build_sim_app(refresh_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await tap(pilot, "#staff")
        await tap_code(pilot, STAFF_PIN)
        assert isinstance(app.screen, StaffScreen)
        assert door_label(app, 8) == "8\nsmall\nfree\nshut"

        # Opened by hand (a staff key, a crowbar): the monitor records a tamper, the grid shows it.
        k.sim_door(8).force_open()
        await wait_for(lambda: door_label(app, 8) == "8\nsmall\nfree\nFAULT")
        assert app.screen.query_one("#door-8").has_class("-fault")
        assert app.screen.query_one("#door-8").has_class("-open")
        assert k.door(8).fault == "opened without a command"
        assert len(k.events(EventType.DOOR_TAMPERED)) == 1
        k.sim_door(8).close()
        await wait_for(lambda: not app.screen.query_one("#door-8").has_class("-open"))

        # Both boards lose power: the grid says so above the doors; opening a door is refused
        # before anything is committed (no pulse, no fault: the bank is known to be down).
        assert not app.screen.query_one("#board-banner").display
        for board in k.sim.boards.values():
            board.power_off()
        await wait_for(lambda: text(app, "#board-banner").startswith(BOARDS_DOWN))
        assert app.screen.query_one("#board-banner").display
        await tap(pilot, "#door-3")
        await tap(pilot, "#open-door")
        await settle(pilot)
        assert text(app, "#staff-status").startswith("The lock boards are not responding")
        assert pulses(k) == {}
        assert not k.sim_door(3).is_open
        assert k.door(3).fault is None

        # Power back: the banner goes, and the same button opens the simulated door.
        for board in k.sim.boards.values():
            board.power_on()
        await wait_for(lambda: not app.screen.query_one("#board-banner").display)
        await tap(pilot, "#open-door")
        await settle(pilot)
        assert text(app, "#staff-status") == "Locker 3 is open."
        assert k.sim_door(3).is_open
        assert pulses(k) == {3: 1}
        await wait_for(lambda: door_label(app, 3) == "3\nsmall\nfree\nOPEN")
        assert not app.screen.query_one("#door-3").has_class("-fault")
        assert k.door(3).status is DoorStatus.AVAILABLE  # staff opening moves no parcel


async def test_a_return_code_opens_a_simulated_door_and_shutting_it_confirms_the_return(
    sim_kiosk: SimKiosk, build_sim_app: Callable[..., KioskApp]
) -> None:
    k = sim_kiosk
    k.allocate("r1", code="RTN234", kind=AllocationKind.RETURN, size=Size.MEDIUM)
    app = build_sim_app()
    async with app.run_test(size=SIZE) as pilot:
        await tap(pilot, "#return")
        await tap_code(pilot, "RTN234")
        assert isinstance(app.screen, ReturnDoorScreen)
        door = allocations.get_allocation(k.store.db, "r1").door
        assert door is not None
        assert LAYOUT[door].rank >= Size.MEDIUM.rank
        assert k.sim_door(door).is_open
        assert pulses(k) == {door: 1}
        assert text(app, "#return-status") == (
            f"Locker {door} is open: put your return in and close the door to confirm."
        )
        assert k.status("r1") is not AllocationStatus.DEPOSITED

        k.sim_door(door).set_occupied()
        k.sim_door(door).close()
        await wait_for(
            lambda: (
                text(app, "#return-status")
                == f"Thank you: your return is in Locker {door} and confirmed."
            )
        )
        assert k.status("r1") is AllocationStatus.DEPOSITED
        assert k.door(door).status is DoorStatus.OCCUPIED
        assert not app.screen.query_one("#retry").display
