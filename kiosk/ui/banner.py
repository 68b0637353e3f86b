"""The top bar of every screen: the kiosk's name, the time, and the offline banner."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

if TYPE_CHECKING:
    from kiosk.ui.app import KioskApp

OFFLINE_TEXT = "Offline: the locker cannot reach the network. Pickup still works."


class TopBar(Horizontal):
    """Title and clock; below them the offline banner while the cloud is unreachable."""

    def __init__(self, title: str) -> None:
        super().__init__(id="top-bar")
        self.title_text = title

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="screen-title")
        yield Static("", id="clock")

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        app = cast("KioskApp", self.app)
        # The location's time zone (configured), never the machine's: snapshots and kiosks
        # whose system clock is set to UTC show the same local time.
        now = app.services.ctx.clock.now().astimezone(app.services.time_zone)
        self.query_one("#clock", Static).update(now.strftime("%H:%M"))


class OfflineBanner(Static):
    """Shown (``-offline``) while sync is configured and not connected; hidden otherwise."""

    def __init__(self) -> None:
        super().__init__(OFFLINE_TEXT, id="offline-banner")

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        app = cast("KioskApp", self.app)
        status = app.services.sync_status()
        self.set_class(status is not None and not status.connected, "-offline")
