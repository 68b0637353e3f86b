"""Messages between the view's widgets: small dataclasses (Textual's `Message.__post_init__`
sets a dataclass message up)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class DoorChosen(Message):
    """A door tile was clicked: select that door."""

    door: int


@dataclass
class ActionRequested(Message):
    """An action button was pressed: run the named action (see `actions.ACTIONS`)."""

    action: str


@dataclass
class DoorSelected(Message):
    """The grid's selection moved to ``door``."""

    door: int
