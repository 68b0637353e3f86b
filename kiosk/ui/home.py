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


class HomeScreen(KioskScreen):
    TITLE_TEXT = "Parcel locker"
    DEFAULT_CSS = """
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
        yield Static("Touch an option (or press 1-4)", classes="prompt")
        with Grid(id="home-grid"):
            for key, label in CHOICES:
                yield Button(label, id=key, classes="home-choice")
        note = self.services.home_note()
        if note:
            yield Static(note, id="home-note")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        assert event.button.id is not None
        self.action_choose(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.kiosk.start(choice)

    def action_home(self) -> None:
        pass
