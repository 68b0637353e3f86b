"""The home screen's note (the demo's codes) and what Ctrl+C / Ctrl+Q do at a keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.ui.app import make_app
from kiosk.ui.home import HomeScreen
from kiosk.ui.services import UiServices, pin_checker
from tests.flows.conftest import Kiosk

from .conftest import SIZE
from .helpers import text


async def test_the_home_screen_shows_its_note(kiosk: Kiosk) -> None:
    app = make_app(UiServices(kiosk.ctx, pin_checker(None), home_note=lambda: "Try ABC234"))
    async with app.run_test(size=SIZE):
        assert text(app, "#home-note") == "Try ABC234"


async def test_no_note_by_default(kiosk: Kiosk) -> None:
    app = make_app(UiServices(kiosk.ctx, pin_checker(None)))
    async with app.run_test(size=SIZE):
        assert not app.screen.query("#home-note")


@pytest.mark.parametrize("key", ["ctrl+c", "ctrl+q"])
async def test_the_quit_keys_ask_the_kiosk_to_stop(kiosk: Kiosk, key: str) -> None:
    asked: list[str] = []
    app = make_app(UiServices(kiosk.ctx, pin_checker(None), on_quit=lambda: asked.append(key)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")  # from any screen, not only home
        await pilot.press(key)
        await pilot.pause()
        assert asked == [key]
        assert app.is_running  # the kiosk stops the app, not the key


@pytest.mark.parametrize("key", ["ctrl+c", "ctrl+q"])
async def test_in_service_the_quit_keys_do_nothing(kiosk: Kiosk, key: str) -> None:
    app = make_app(UiServices(kiosk.ctx, pin_checker(None)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await pilot.pause()
        assert app.is_running
        assert isinstance(app.screen, HomeScreen)


async def test_the_home_screen_tells_customers_while_the_boards_do_not_answer(
    kiosk: Kiosk,
) -> None:
    error: list[str] = ["PortError: serial port /dev/ttyUSB0 failed"]
    services = UiServices(
        kiosk.ctx,
        pin_checker(None),
        refresh_s=0.05,
        board_error=lambda: error[0] if error else None,
    )
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        notice = app.screen.query_one("#home-boards-down")
        assert notice.has_class("-shown")
        assert "come back later" in text(app, "#home-boards-down")
        error.clear()
        await pilot.pause(0.2)
        assert not notice.has_class("-shown")


async def test_the_clock_shows_the_locations_time_zone(kiosk: Kiosk) -> None:
    from zoneinfo import ZoneInfo

    # START is 09:00 UTC on 2 March: 10:00 in Warsaw (CET).
    app = make_app(UiServices(kiosk.ctx, pin_checker(None), time_zone=ZoneInfo("Europe/Warsaw")))
    async with app.run_test(size=SIZE):
        assert text(app, "#clock") == "10:00"


def test_a_time_zone_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    from kiosk.config import KioskConfigError, load_config
    from tests.kiosk_process.helpers import write_config

    doors = '[doors]\nbackend = "fake"\n[doors.fake]\ndoors = 8\n'
    path = write_config(tmp_path, doors=doors)
    path.write_text(path.read_text().replace("[layout]", 'time_zone = "Europe/Nowhere"\n[layout]'))
    with pytest.raises(KioskConfigError, match=r"kiosk\.time_zone"):
        load_config(path)
    path.write_text(path.read_text().replace("Europe/Nowhere", "Europe/Warsaw"))
    assert load_config(path).time_zone == "Europe/Warsaw"
