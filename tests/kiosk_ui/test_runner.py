"""The UI's supervisor: an app that crashes is logged and replaced; the caller never sees it,
nor does the person at the screen; a stop lets the app leave the terminal as it found it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from kiosk.ui.app import KioskApp
from kiosk.ui.home import HomeScreen
from kiosk.ui.runner import run_ui
from kiosk.ui.services import UiServices, pin_checker
from tests.flows.conftest import Kiosk


async def test_a_crashing_ui_is_restarted_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    builds: list[int] = []
    apps: list[KioskApp | None] = []

    def build() -> KioskApp:
        builds.append(1)
        raise RuntimeError("broken screen")

    task = asyncio.create_task(run_ui(build, on_app=apps.append, restart_delay_s=0.01))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(builds) >= 2
    assert "the touchscreen UI crashed" in caplog.text
    assert apps == [None] * len(apps)


class _BrokenHome(HomeScreen):
    def on_mount(self) -> None:
        raise RuntimeError("a bug in a screen")


class _AppWithABug(KioskApp):
    def on_mount(self) -> None:
        self.push_screen(_BrokenHome())


async def test_a_bug_in_a_screen_is_logged_never_printed_on_the_screen(
    kiosk: Kiosk, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    apps: list[KioskApp | None] = []

    def build() -> KioskApp:
        return _AppWithABug(UiServices(kiosk.ctx, pin_checker(None)))

    task = asyncio.create_task(
        run_ui(build, on_app=apps.append, restart_delay_s=0.01, headless=True)
    )
    await wait_until(lambda: len([a for a in apps if a is not None]) >= 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    first = next(a for a in apps if a is not None)
    assert first.return_code == 1
    assert "a bug in a screen" in caplog.text  # the traceback is in the log...
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err + printed.out  # ...and not on the terminal
    assert "a bug in a screen" not in printed.err + printed.out


async def test_stopping_the_daemon_lets_the_app_leave_the_terminal_cleanly(kiosk: Kiosk) -> None:
    apps: list[KioskApp | None] = []

    def build() -> KioskApp:
        return KioskApp(UiServices(kiosk.ctx, pin_checker(None)))

    task = asyncio.create_task(run_ui(build, on_app=apps.append, headless=True))
    await wait_until(lambda: apps and apps[-1] is not None and apps[-1].is_running)
    app = apps[-1]
    assert app is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # The app exited as on `App.exit` (its return code set, its shutdown run: the driver
    # restored the terminal), rather than being cancelled mid-frame.
    assert app.return_code == 0
    assert not app.is_running
    assert apps[-1] is None


async def wait_until(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
