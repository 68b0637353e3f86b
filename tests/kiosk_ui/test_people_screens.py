"""Staff and couriers at the touchscreen (issue 11): a staff member's own PIN names them in the
audit; a courier signs in with their code, drops off under their id and collects their
carrier's parcels only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import audit, people
from kiosk.ui.app import KioskApp
from kiosk.ui.collection import CollectionScreen
from kiosk.ui.driver import DriverScreen
from kiosk.ui.notice import NoticeScreen
from kiosk.ui.staff import StaffScreen
from shared.people import secret_hash
from shared.protocol import CourierChange, StaffChange
from shared.states import AllocationStatus
from tests.flows.conftest import Kiosk
from tests.kiosk_ui.conftest import SIZE, STAFF_PIN
from tests.kiosk_ui.helpers import settle, text

SALT = "ef" * 16


def staff(kiosk: Kiosk, staff_id: str, pin: str) -> None:
    change = StaffChange(
        revision=1, staff_id=staff_id, name="Ana", pin_hash=secret_hash(pin, SALT), salt=SALT
    )
    people.apply_staff(kiosk.store, change, kiosk.clock.now())


def courier(kiosk: Kiosk, courier_id: str, code: str, carrier: str, perms: list[str]) -> None:
    change = CourierChange(
        revision=2,
        courier_id=courier_id,
        name="Dee",
        carrier_id=carrier,
        code_hash=secret_hash(code, SALT),
        salt=SALT,
        permissions=perms,  # type: ignore[arg-type]
    )
    people.apply_courier(kiosk.store, change, kiosk.clock.now())


async def test_staff_sign_in_with_their_own_pin_and_the_audit_names_them(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    staff(kiosk, "ana", "975310")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *STAFF_PIN, "enter")  # the shared PIN: no longer accepted
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        app.go_home()
        await settle(pilot)
        await pilot.press("4", *"975310", "enter")
        await settle(pilot)
        assert isinstance(app.screen, StaffScreen)
        assert app.staff_id == "ana"
        await pilot.click("#collect")
        await pilot.click("#open-all")
        await settle(pilot)
    [accepted] = [
        e for e in audit.entries(kiosk.store.db, command="staff_sign_in") if e.result == "accepted"
    ]
    assert accepted.detail == {"staff_id": "ana"}
    assert "staff-touchscreen" not in str([e.detail for e in audit.entries(kiosk.store.db)])


async def test_a_courier_signs_in_drops_off_and_collects_only_their_carriers_parcels(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    past = kiosk.clock.now() - timedelta(hours=1)
    kiosk.allocate("mine", door=1, status=AllocationStatus.DEPOSITED, pickup_expires_at=past)
    kiosk.allocate("theirs", door=5, status=AllocationStatus.DEPOSITED, pickup_expires_at=past)
    kiosk.allocate("new", door=2, barcode="PKG-9")
    with kiosk.store.transaction() as db:
        people.set_carrier(db, "mine", "carrier-a")
        people.set_carrier(db, "theirs", "carrier-b")
    courier(kiosk, "drv-a", "24681357", "carrier-a", ["drop_off", "collect_expired"])
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # Drop off: couriers are provisioned, so a code first
        await settle(pilot)
        await pilot.press(*"11111111", "enter")
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        assert text(app, "#notice-heading") == "Code not accepted"
        app.pop_screen()
        await settle(pilot)
        await pilot.press("backspace", *"24681357", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DriverScreen)
        app.screen.scan("PKG-9")
        await settle(pilot)
        assert fake_bank.is_open(2)
        await pilot.click("#collect")
        await settle(pilot)
        assert isinstance(app.screen, CollectionScreen)
        assert text(app, "#collect-status") == "Parcels to collect: 1 of 1"
        await pilot.click("#open-all")
        await settle(pilot)
        assert fake_bank.is_open(1)
        assert not fake_bank.is_open(5)
    [scan] = [e for e in audit.entries(kiosk.store.db, command="scan") if e.result == "accepted"]
    assert scan.detail["driver_id"] == "drv-a"


async def test_a_courier_locked_out_after_wrong_codes_is_told_to_come_back_later(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    courier(kiosk, "drv-a", "24681357", "carrier-a", ["drop_off"])
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        for attempt in range(1, 6):
            await pilot.press(*"11111111", "enter")
            await settle(pilot)
            assert isinstance(app.screen, NoticeScreen)
            if attempt < 5:
                assert text(app, "#notice-heading") == "Code not accepted"
                app.pop_screen()
                await settle(pilot)
                await pilot.press(*["backspace"] * 8)
        assert text(app, "#notice-heading") == "Courier sign-in locked"
        assert "Come back in 15 minute(s)" in text(app, "#notice-message")
        app.pop_screen()
        await settle(pilot)
        await pilot.press(*["backspace"] * 8, *"24681357", "enter")  # the right code, while locked
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        assert text(app, "#notice-heading") == "Courier sign-in locked"
        assert not any(isinstance(screen, DriverScreen) for screen in app.screen_stack)
