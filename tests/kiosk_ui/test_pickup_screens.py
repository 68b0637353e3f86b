"""Pickup at the touchscreen: keypad, result, refusals, the keypad lock, retry, the scanner."""

from __future__ import annotations

from collections.abc import Callable

from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.ui.app import KioskApp
from kiosk.ui.home import HomeScreen
from kiosk.ui.notice import NoticeScreen
from kiosk.ui.pickup import PickupScreen
from kiosk.ui.pickup_result import PickupResultScreen
from shared.states import AllocationStatus
from tests.flows.conftest import Kiosk, wait_for
from tests.kiosk_ui.conftest import SIZE
from tests.kiosk_ui.helpers import settle, text

CODE = "ABC234"


def deposit(kiosk: Kiosk, allocation_id: str, door: int, code: str = CODE) -> None:
    kiosk.allocate(allocation_id, code=code, door=door, status=AllocationStatus.DEPOSITED)


async def test_pickup_on_the_keypad_opens_the_door(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    deposit(kiosk, "a1", 5)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#pickup")
        assert isinstance(app.screen, PickupScreen)
        for key in CODE:
            await pilot.click(f"#key-{key}")
        assert text(app, "#code-field") == " ".join(CODE)
        await pilot.click("#key-ok")
        await settle(pilot)
        assert isinstance(app.screen, PickupResultScreen)
        assert text(app, "#door-text-5") == (
            "Locker 5 is open: take your parcel and close the door."
        )
        assert fake_bank.is_open(5)
        assert not app.screen.query_one("#retry-5").display


async def test_backspace_and_clear_edit_the_code(build_app: Callable[..., KioskApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await pilot.press("a", "b", "c")
        await pilot.click("#key-back")
        assert text(app, "#code-field") == "A B _ _ _ _"
        await pilot.press("backspace")
        assert text(app, "#code-field") == "A _ _ _ _ _"
        await pilot.click("#key-clear")
        assert text(app, "#code-field") == "_ _ _ _ _ _"
        await pilot.press("o", "i", "l", "1")  # not in the code alphabet: ignored
        assert text(app, "#code-field") == "_ _ _ _ _ _"


async def test_one_code_for_several_parcels_lists_every_door(
    kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    deposit(kiosk, "a1", 2)
    deposit(kiosk, "a2", 6)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", *CODE.lower(), "enter")
        await settle(pilot)
        assert "Locker 2 is open" in text(app, "#door-text-2")
        assert "Locker 6 is open" in text(app, "#door-text-6")


async def test_an_unknown_code_shows_the_refusal_and_try_again_returns_to_the_keypad(
    build_app: Callable[..., KioskApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", *"ZZZ999", "enter")
        await settle(pilot)
        assert isinstance(app.screen, NoticeScreen)
        assert "not known" in text(app, "#notice-message") or "tries" in text(
            app, "#notice-message"
        )
        await pilot.click("#again")
        assert isinstance(app.screen, PickupScreen)
        assert text(app, "#code-field") == "_ _ _ _ _ _"


async def test_the_fifth_wrong_code_locks_the_keypad_with_the_time_left(
    build_app: Callable[..., KioskApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        for _ in range(5):
            await pilot.press(*"ZZZ999", "enter")
            await settle(pilot)
            await pilot.click("#again")
        await pilot.press(*"ZZZ998", "enter")
        await settle(pilot)
        message = text(app, "#notice-message")
        assert "locked for 60 more seconds" in message


async def test_a_door_not_seen_open_offers_try_again(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    deposit(kiosk, "a1", 3)
    fake_bank.jam(3)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", *CODE, "enter")
        await settle(pilot)
        assert "Locker 3 did not open" in text(app, "#door-text-3")
        assert app.screen.query_one("#retry-3").display
        fake_bank.jam(3, False)
        await pilot.click("#retry-3")
        await settle(pilot)
        assert text(app, "#door-text-3") == (
            "Locker 3 is open: take your parcel and close the door."
        )
        assert fake_bank.is_open(3)
        await pilot.click("#done")
        assert isinstance(app.screen, HomeScreen)


async def test_a_scanned_qr_code_shows_the_same_result_screen(
    kiosk: Kiosk, build_app: Callable[..., KioskApp]
) -> None:
    deposit(kiosk, "a1", 4)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")  # whatever screen is up, a scan takes over
        app.scan(CODE)
        await settle(pilot)
        assert isinstance(app.screen, PickupResultScreen)
        assert "Locker 4 is open" in text(app, "#door-text-4")


async def test_door_names_come_from_the_service(kiosk: Kiosk) -> None:
    from kiosk.ui.app import make_app
    from kiosk.ui.services import UiServices, pin_checker

    deposit(kiosk, "a1", 5)
    app = make_app(UiServices(kiosk.ctx, pin_checker(None), door_name=lambda d: f"B{d}"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", *CODE, "enter")
        await settle(pilot)
        assert text(app, "#door-text-5") == (
            "Locker B5 is open: take your parcel and close the door."
        )


async def test_the_door_label_from_the_cloud_is_shown(kiosk: Kiosk) -> None:
    from kiosk.store.door_labels import door_namer, set_label
    from kiosk.ui.app import make_app
    from kiosk.ui.services import UiServices, pin_checker

    deposit(kiosk, "a1", 5)
    set_label(kiosk.ctx.store, 5, "C2")  # issue 10: what the cloud's change log set
    app = make_app(UiServices(kiosk.ctx, pin_checker(None), door_name=door_namer(kiosk.ctx.store)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", *CODE, "enter")
        await settle(pilot)
        assert text(app, "#door-text-5") == (
            "Locker C2 is open: take your parcel and close the door."
        )


async def test_the_pickup_screen_notices_the_door_closing(
    kiosk: Kiosk, fake_bank: FakeDoorBank, build_app: Callable[..., KioskApp]
) -> None:
    deposit(kiosk, "a1", 5)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        app.scan(CODE)
        await settle(pilot)
        assert isinstance(app.screen, PickupResultScreen)
        fake_bank.close(5)
        await kiosk.poll()
        await wait_for(lambda: "picked up" in text(app, "#door-text-5"))
        assert text(app, "#door-text-5") == "Locker 5 is shut: parcel picked up. Thank you."
        assert not app.screen.query_one("#retry-5").display
