"""The UI's supervisor: an app that crashes is logged and replaced; the caller never sees it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kiosk.ui.app import KioskApp
from kiosk.ui.runner import run_ui


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
