"""An on-screen keypad: large keys for the code alphabet (or digits), backspace, clear and OK."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Button

from kiosk.ui.messages import KeyPressed

BACK, CLEAR, OK = "back", "clear", "ok"


class Keypad(Grid):
    """Keys in a grid; each press posts `KeyPressed`. Keyboards type into the screen directly.

    Args:
        keys: The characters, in order.
        columns: Keys per row.
    """

    def __init__(self, keys: str, *, columns: int, id: str | None = None) -> None:
        super().__init__(id=id, classes="keypad")
        self.keys = keys
        self.styles.grid_size_columns = columns

    def compose(self) -> ComposeResult:
        for key in self.keys:
            yield Button(key, id=f"key-{key}", classes="key")
        yield Button("⌫", id=f"key-{BACK}", classes="key action", tooltip="Backspace")
        yield Button("Clear", id=f"key-{CLEAR}", classes="key action")
        yield Button("OK", id=f"key-{OK}", classes="key ok", variant="success")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        assert event.button.id is not None
        self.post_message(KeyPressed(event.button.id.removeprefix("key-")))
