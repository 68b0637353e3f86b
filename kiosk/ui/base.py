"""What every kiosk screen shares: the top bar, the offline banner, and a way home."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen

from kiosk.ui.banner import OfflineBanner, TopBar

if TYPE_CHECKING:
    from kiosk.ui.app import KioskApp
    from kiosk.ui.services import UiServices


class KioskScreen(Screen[None]):
    """A full screen with the top bar and banner above ``compose_body``'s widgets.

    Escape goes home from any screen but home.
    """

    TITLE_TEXT = "Parcel locker"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "home", "Home", show=False)]

    def compose(self) -> ComposeResult:
        yield TopBar(self.TITLE_TEXT)
        yield OfflineBanner()
        with Vertical(classes="body"):
            yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def kiosk(self) -> KioskApp:
        return cast("KioskApp", self.app)

    @property
    def services(self) -> UiServices:
        return self.kiosk.services

    def action_home(self) -> None:
        self.kiosk.go_home()
