"""Fixtures for the touchscreen UI tests: the flows' kiosk (in-memory store, fake door bank,
manual clock) and a way to build the app over it with the services a test chooses.

`build_sim_app` builds the same app over `sim_kiosk` instead: the production serial bank talking
to the lock-board simulator on a pseudo-terminal (both protocols), with the real door monitor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest

from kiosk.ui.app import KioskApp, make_app
from kiosk.ui.services import SyncState, UiServices, pin_checker
from tests.flows.conftest import Kiosk, SimKiosk, fake_bank, kiosk, sim_kiosk  # noqa: F401

STAFF_PIN = "2468"
SIZE = (100, 30)  # the 800x480 touchscreen in 8x16 px cells


@dataclass
class FakeSync:
    connected: bool = True


def kiosk_app(
    kiosk: Kiosk,  # noqa: F811
    *,
    sync: FakeSync | None = None,
    idle_timeout_s: float = 60,
    refresh_s: float = 0.05,
    board_error: Callable[[], str | None] | None = None,
) -> KioskApp:
    """The touchscreen app over ``kiosk``'s flows, with the staff PIN `STAFF_PIN`.

    ``board_error`` defaults to the health of ``kiosk``'s door bank (what its monitor noted).
    """

    def status() -> SyncState | None:
        return sync

    def monitor_error() -> str | None:
        return kiosk.ctx.bank_health.unavailable

    return make_app(
        UiServices(
            kiosk.ctx,
            pin_checker(STAFF_PIN),
            sync_status=status,
            idle_timeout_s=idle_timeout_s,
            refresh_s=refresh_s,
            board_error=board_error or monitor_error,
        )
    )


@pytest.fixture
def build_app(kiosk: Kiosk) -> Callable[..., KioskApp]:  # noqa: F811
    return partial(kiosk_app, kiosk)


@pytest.fixture
def build_sim_app(sim_kiosk: SimKiosk) -> Callable[..., KioskApp]:  # noqa: F811
    return partial(kiosk_app, sim_kiosk)
