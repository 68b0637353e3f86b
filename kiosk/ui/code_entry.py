"""Typing a code: the on-screen keypad, or a keyboard, into a six-character field."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk.ui.base import KioskScreen
from kiosk.ui.keypad import BACK, CLEAR, OK, Keypad
from kiosk.ui.messages import KeyPressed
from shared.codes import CODE_ALPHABET, CODE_LENGTH


class CodeEntryScreen(KioskScreen):
    """A code field over a keypad; OK (or Enter) with a full code calls `submit`.

    Subclasses set ``PROMPT`` and the keys, and implement `submit`. Letters are upper-cased, and
    characters outside the keys are ignored (no O, I, L: the code alphabet leaves them out).
    """

    PROMPT = "Enter your code"
    KEYS = CODE_ALPHABET
    COLUMNS = 9
    LENGTH = CODE_LENGTH
    MIN_LENGTH = CODE_LENGTH
    MASKED = False

    def __init__(self) -> None:
        super().__init__()
        self.code = ""
        self.busy = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="entry-row"):
            yield Static(self.PROMPT, classes="prompt")
            yield Static(self._shown(), id="code-field")
        yield Keypad(self.KEYS, columns=self.COLUMNS, id="keypad")
        with Horizontal(classes="actions"):
            yield Button("Back", id="cancel")

    def on_key_pressed(self, message: KeyPressed) -> None:
        self.press(message.key)

    def on_key(self, event: events.Key) -> None:
        if event.key == "backspace":
            self.press(BACK)
        elif event.key == "enter":
            self.press(OK)
        elif event.character and event.character.upper() in self.KEYS:
            self.press(event.character.upper())
        else:
            return
        event.stop()
        event.prevent_default()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.kiosk.go_home()

    def press(self, key: str) -> None:
        """One key: a character, BACK, CLEAR or OK."""
        if self.busy:
            return
        if key == BACK:
            self.code = self.code[:-1]
        elif key == CLEAR:
            self.code = ""
        elif key == OK:
            if len(self.code) >= self.MIN_LENGTH:
                self.busy = True
                self.run_worker(self._submit(self.code), group="flow")
        elif len(self.code) < self.LENGTH:
            self.code += key
        self.query_one("#code-field", Static).update(self._shown())

    def clear(self) -> None:
        self.code = ""
        self.query_one("#code-field", Static).update(self._shown())

    async def _submit(self, code: str) -> None:
        try:
            await self.submit(code)
        finally:
            self.busy = False
            self.clear()

    async def submit(self, code: str) -> None:
        raise NotImplementedError

    def _shown(self) -> str:
        typed = "•" * len(self.code) if self.MASKED else self.code
        return " ".join(typed.ljust(self.MIN_LENGTH, "_"))
