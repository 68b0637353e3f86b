"""Fixtures for the touchscreen UI tests: the flows' kiosk (in-memory store, fake door bank,
manual clock) and a way to build the app over it with the services a test chooses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kiosk.ui.app import KioskApp, make_app
from kiosk.ui.services import SyncState, UiServices, pin_checker
from tests.flows.conftest import Kiosk, fake_bank, kiosk  # noqa: F401  (fixtures)

STAFF_PIN = "2468"
SIZE = (100, 30)  # the 800x480 touchscreen in 8x16 px cells


@dataclass
class FakeSync:
    connected: bool = True


@pytest.fixture
def build_app(kiosk: Kiosk) -> Callable[..., KioskApp]:  # noqa: F811
    def build(
        *, sync: FakeSync | None = None, idle_timeout_s: float = 60, refresh_s: float = 0.05
    ) -> KioskApp:
        def status() -> SyncState | None:
            return sync

        return make_app(
            UiServices(
                kiosk.ctx,
                pin_checker(STAFF_PIN),
                sync_status=status,
                idle_timeout_s=idle_timeout_s,
                refresh_s=refresh_s,
            )
        )

    return build
