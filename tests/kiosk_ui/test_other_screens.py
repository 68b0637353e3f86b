"""Driver, returns, staff, the offline banner, the idle timeout and a failing flow."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from kiosk.flows import pickup
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store.records import AllocationKind
from kiosk.ui.app import KioskApp
from kiosk.ui.collection import CollectionScreen
from kiosk.ui.driver import DriverScreen
from kiosk.ui.home import HomeScreen
from kiosk.ui.notice import FAILURE_TEXT, NoticeScreen
from kiosk.ui.staff import StaffScreen
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus
from tests.flows.conftest import Kiosk, wait_for
from tests.kiosk_ui.conftest import SIZE, STAFF_PIN, FakeSync
from tests.kiosk_ui.helpers import settle, tap, text


async def test_driver_multi_drop_with_a_problem_report_and_a_summary(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("p1", door=1, barcode="PKG-1")
    kiosk.allocate("p2", door=6, size=Size.LARGE, barcode="PKG-2")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#driver")
        assert isinstance(app.screen, DriverScreen)
        await pilot.press(*"PKG-1", "enter")
        await settle(pilot)
        assert text(app, "#drop-status").startswith(
            "Locker 1 (small) is open: put the parcel in and close the door."
        )
        await pilot.click("#not-empty")
        await settle(pilot)
        status = text(app, "#drop-status")
        assert "Locker 2 (small) is open" in status
        assert "Instead of Locker 1" in status
        assert kiosk.door(1).status is DoorStatus.MAINTENANCE
        fake_bank.close(2)
        await kiosk.poll()
        await pilot.press(*"PKG-2", "enter")  # the next parcel, without going home
        await settle(pilot)
        assert "Locker 6 (large) is open" in text(app, "#drop-status")
        assert text(app, "#drop-count") == "Parcels: 2"
        fake_bank.close(6)
        await kiosk.poll()
        await wait_for(lambda: not app.screen.query_one("#problems").visible)
        await tap(pilot, "#finish")
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        assert text(app, "#notice-message") == "Parcels deposited: 2\nDoors: 2, 6\nThank you."


async def test_driver_refusal_and_door_did_not_open(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("p1", door=4, size=Size.MEDIUM, barcode="PKG-1")
    fake_bank.jam(4)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", *"NOPE", "enter")
        await settle(pilot)
        assert app.screen.query_one("#drop-status").has_class("-refused")
        await pilot.press(*"PKG-1")
        await pilot.click("#open")
        await settle(pilot)
        assert "Locker 4 (medium) did not open" in text(app, "#drop-status")
        await pilot.click("#did-not-open")
        await settle(pilot)
        assert "Locker 5 (medium) is open" in text(app, "#drop-status")


async def test_a_scanned_barcode_starts_a_drop_off(
    kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("p1", door=3, barcode="PKG-9")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        app.scan("PKG-9")
        await settle(pilot)
        assert isinstance(app.screen, DriverScreen)
        assert "Locker 3 (small) is open" in text(app, "#drop-status")


async def test_a_return_is_confirmed_when_its_door_closes(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("r1", code="RET234", door=7, size=Size.XLARGE, kind=AllocationKind.RETURN)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", *"RET234", "enter")
        await settle(pilot)
        assert text(app, "#return-status") == (
            "Locker 7 is open: put your return in and close the door to confirm."
        )
        assert app.focused is app.screen.query_one("#done")  # Enter means Done
        fake_bank.close(7)
        await kiosk.poll()
        await wait_for(
            lambda: (
                text(app, "#return-status")
                == "Thank you: your return is in Locker 7 and confirmed."
            )
        )


async def sign_in(pilot: object, app: KioskApp) -> None:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await pilot.press("4", *STAFF_PIN, "enter")
    await settle(pilot)
    assert isinstance(app.screen, StaffScreen)


async def test_a_wrong_staff_pin_is_refused(build_app: Callable[..., KioskApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *"1111", "enter")
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        assert text(app, "#notice-heading") == "Wrong PIN"


async def test_staff_sets_and_clears_maintenance_and_opens_a_door(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("p1", door=2, status=AllocationStatus.DEPOSITED, code="ABC234")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, app)
        await pilot.click("#door-3")
        await pilot.click("#maintenance")
        await settle(pilot)
        assert kiosk.door(3).status is DoorStatus.MAINTENANCE
        assert text(app, "#staff-status") == "Locker 3 is out of service."
        await wait_for(lambda: app.screen.query_one("#door-3").has_class("-maintenance"))
        await tap(pilot, "#maintenance")
        await settle(pilot)
        assert kiosk.door(3).status is DoorStatus.AVAILABLE
        await pilot.click("#door-2")  # a parcel inside: refused, with the flow's words
        await tap(pilot, "#maintenance")
        await settle(pilot)
        assert "Locker 2 cannot change now" in text(app, "#staff-status")
        await pilot.click("#door-8")
        await pilot.click("#open-door")
        await settle(pilot)
        assert fake_bank.is_open(8)
        await kiosk.poll()
        await wait_for(lambda: "OPEN" in str(app.screen.query_one("#door-8").render()))


async def test_staff_can_open_again_a_door_that_did_not_open(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    fake_bank.jam(4)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, app)
        await pilot.click("#door-4")
        await pilot.click("#open-door")
        await settle(pilot)
        assert text(app, "#staff-status") == (
            "Locker 4 did not open. Touch Open door to try again."
        )
        assert kiosk.door(4).fault is not None
        fake_bank.jam(4, False)
        # The failed open still holds the door (until abandoned): the retry pulses it again
        # instead of being refused as "being used right now".
        await tap(pilot, "#open-door")
        await settle(pilot)
        assert text(app, "#staff-status") == "Locker 4 is open."
        assert fake_bank.is_open(4)
        assert fake_bank.pulses(4) == 2
        assert kiosk.door(4).fault is None


async def test_staff_collects_expired_parcels_one_by_one(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    past = kiosk.clock.now() - timedelta(hours=1)
    kiosk.allocate("e1", door=1, status=AllocationStatus.DEPOSITED, pickup_expires_at=past)
    kiosk.allocate("e2", door=5, status=AllocationStatus.DEPOSITED, pickup_expires_at=past)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, app)
        await pilot.click("#collect")
        assert isinstance(app.screen, CollectionScreen)
        assert text(app, "#collect-status") == "Parcels to collect: 2 of 2"
        await pilot.click("#open-all")
        await settle(pilot)
        assert fake_bank.is_open(1)
        assert fake_bank.is_open(5)
        await pilot.click("#collected-e1")
        await settle(pilot)
        assert text(app, "#collect-status") == "Parcels to collect: 1 of 2"
        await pilot.click("#collected-e2")
        await settle(pilot)
        assert text(app, "#collect-status") == "Parcels to collect: 0 of 2"
        statuses = {a: kiosk.store.db["allocations"].get(a)["status"] for a in ("e1", "e2")}
        assert statuses == {"e1": "collected", "e2": "collected"}


async def test_the_offline_banner_follows_the_sync_status(
    kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    sync = FakeSync(connected=False)
    kiosk.allocate("a1", code="ABC234", door=5, status=AllocationStatus.DEPOSITED)
    app = build_app(sync=sync)
    async with app.run_test(size=SIZE) as pilot:
        assert app.screen.query_one("#offline-banner").display
        await pilot.press("1", *"ABC234", "enter")  # pickup works offline
        await settle(pilot)
        assert "Locker 5 is open" in text(app, "#door-text-5")
        sync.connected = True
        await wait_for(lambda: not app.screen.query_one("#offline-banner").display)


async def test_no_banner_without_sync(build_app: Callable[..., KioskApp]) -> None:
    app = build_app(sync=None)
    async with app.run_test(size=SIZE):
        assert not app.screen.query_one("#offline-banner").display


async def test_the_ui_goes_home_when_idle(build_app: Callable[..., KioskApp]) -> None:
    # Time passes by moving the last touch back, not by sleeping: with a 2 s timeout and real
    # waiting, two key presses on a loaded machine sometimes took longer than the timeout and
    # the screen went home before the test looked (a test that failed now and then).
    app = build_app(idle_timeout_s=30)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "a")
        assert not isinstance(app.screen, HomeScreen)
        app.last_activity = time.monotonic() - 29  # touched 29 s ago: not yet
        app.home_if_idle()
        assert not isinstance(app.screen, HomeScreen)
        app.last_activity = time.monotonic() - 31  # untouched for longer than the timeout
        # The app's own timer (every second at this timeout) takes it home.
        await wait_for(lambda: isinstance(app.screen, HomeScreen))


async def test_an_exception_in_a_flow_shows_a_friendly_message(
    kiosk: Kiosk, build_app: Callable[..., KioskApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(pickup, "pick_up", broken)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", *"ABC234", "enter")
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        assert text(app, "#notice-message") == FAILURE_TEXT
        assert app.failures == 1
        await pilot.click("#home")
        assert isinstance(app.screen, HomeScreen)


async def test_a_late_door_not_empty_after_a_real_deposit_keeps_the_deposit(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("p1", door=1, barcode="PKG-1")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#driver")
        await pilot.press(*"PKG-1", "enter")
        await settle(pilot)
        assert app.screen.query_one("#problems").visible
        fake_bank.close(1)  # the parcel went in and the door shut
        await kiosk.poll()
        await wait_for(lambda: not app.screen.query_one("#problems").visible)
        assert "the parcel is in" in text(app, "#drop-status")
        await pilot.press("enter")  # nothing to press any more; a stray key changes nothing
        await tap(pilot, "#finish")
        await settle(pilot)
        assert text(app, "#notice-message") == "Parcels deposited: 1\nDoors: 1\nThank you."
    assert kiosk.door(1).status is not DoorStatus.MAINTENANCE


async def test_finishing_with_a_door_still_open_says_so(
    kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    kiosk.allocate("p1", door=1, barcode="PKG-1")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#driver")
        await pilot.press(*"PKG-1", "enter")
        await settle(pilot)
        await tap(pilot, "#finish")
        await settle(pilot)
        assert text(app, "#notice-message") == (
            "No parcels were deposited.\nLocker 1 is still open: put the parcel in and close it."
        )


async def test_a_return_the_kiosk_recorded_collected_is_shown_collected(
    kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    bank = FakeDoorBank(sorted(range(1, 9)), kiosk.bank.timing, occupancy_sensors=True)
    object.__setattr__(kiosk.ctx, "bank", bank)
    kiosk.allocate("r1", door=4, kind=AllocationKind.RETURN, status=AllocationStatus.DEPOSITED)
    bank.set_occupied(4)
    await kiosk.poll()
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, app)
        await pilot.click("#collect")
        assert isinstance(app.screen, CollectionScreen)
        await pilot.click("#open-all")
        await settle(pilot)
        bank.set_occupied(4, False)  # staff took the return out and shut the door
        bank.close(4)
        await kiosk.poll()
        await wait_for(lambda: text(app, "#collect-status") == "Parcels to collect: 0 of 1")
        assert text(app, "#line-r1 .collect-text").endswith(
            ": collected (door shut, compartment empty)"
        )
        assert app.screen.query_one("#collected-r1").disabled


async def test_staff_clear_a_doors_fault_and_it_is_audited(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    from kiosk.store import audit

    await kiosk.poll()
    fake_bank.open_by_hand(7)
    await kiosk.poll()
    fake_bank.close(7)
    await kiosk.poll()
    assert kiosk.door(7).fault == "opened without a command"
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, app)
        assert not app.screen.query_one("#clear-fault").display
        await tap(pilot, "#door-7")
        assert app.screen.query_one("#clear-fault").display
        await tap(pilot, "#clear-fault")
        await settle(pilot)
        assert text(app, "#staff-status") == ("Locker 7: fault cleared (opened without a command).")
        assert not app.screen.query_one("#clear-fault").display
    assert kiosk.door(7).fault is None
    [entry] = audit.entries(kiosk.store.db, command="clear_fault")
    assert entry.detail["cleared_by"] == "staff-touchscreen"


async def test_the_staff_grid_says_when_most_doors_read_open_at_boot(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    from kiosk.reconcile import reconcile

    for door in range(1, 8):
        fake_bank.open_by_hand(door)
    await reconcile(kiosk.ctx)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, app)
        banner = text(app, "#board-banner")
        assert banner.startswith("Check the wiring: 7 of 8 doors read open at once")
        assert "lock-bit polarity" in banner
