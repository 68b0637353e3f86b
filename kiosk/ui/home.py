"""Home: the four things a person can do at the kiosk."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid
from textual.widgets import Button, Static

from kiosk.ui.base import KioskScreen

CHOICES = (
    ("pickup", "Pick up a parcel"),
    ("driver", "Drop off (driver)"),
    ("return", "Return a parcel"),
    ("staff", "Staff"),
)


BOARDS_DOWN_NOTICE = (
    "The lockers are not responding right now: no door can open. Codes stay valid; please "
    "come back later."
)
"""What a customer reads on the home screen while the lock boards do not answer."""


class HomeScreen(KioskScreen):
    TITLE_TEXT = "Parcel locker"
    DEFAULT_CSS = """
    #home-boards-down {
        display: none;
        height: auto;
        padding: 0 1;
        background: darkred;
        color: white;
        text-style: bold;
    }
    #home-boards-down.-shown {
        display: block;
    }
    #home-note {
        height: auto;
        margin-top: 1;
        padding: 0 1;
        border: round yellow;
        color: yellow;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        ("1", "choose('pickup')", "Pick up"),
        ("2", "choose('driver')", "Drop off"),
        ("3", "choose('return')", "Return"),
        ("4", "choose('staff')", "Staff"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(BOARDS_DOWN_NOTICE, id="home-boards-down")
        yield Static("Touch an option (or press 1-4)", classes="prompt")
        with Grid(id="home-grid"):
            for key, label in CHOICES:
                yield Button(label, id=key, classes="home-choice")
        note = self.services.home_note()
        if note:
            yield Static(note, id="home-note")

    def on_mount(self) -> None:
        self._show_board_health()
        self.set_interval(self.services.refresh_s, self._show_board_health)

    def _show_board_health(self) -> None:
        # Customers learn before typing a code that no door can open now (nothing is spent).
        down = self.services.board_error() is not None
        self.query_one("#home-boards-down", Static).set_class(down, "-shown")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        assert event.button.id is not None
        self.action_choose(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.kiosk.start(choice)

    def action_home(self) -> None:
        pass
