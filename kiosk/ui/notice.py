"""A message for the person at the kiosk: a refusal, or a friendly word when something failed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk.ui.base import KioskScreen

FAILURE_TEXT = (
    "Sorry, something went wrong. Please try again; if it happens again, ask staff for help."
)


class NoticeScreen(KioskScreen):
    """Says ``message``; "Try again" goes back to the screen below, "Home" goes home.

    Args:
        heading: One short line.
        message: What happened and what to do.
        again: Whether to offer "Try again".
    """

    def __init__(self, heading: str, message: str, *, again: bool = True) -> None:
        super().__init__()
        self.heading = heading
        self.message = message
        self.again = again

    def compose_body(self) -> ComposeResult:
        yield Static(self.heading, id="notice-heading", classes="heading")
        yield Static(self.message, id="notice-message", classes="message")
        with Horizontal(classes="actions"):
            if self.again:
                yield Button("Try again", id="again", variant="primary")
            yield Button("Home", id="home")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "again":
            self.dismiss()
        else:
            self.kiosk.go_home()
