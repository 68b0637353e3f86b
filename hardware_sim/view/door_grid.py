"""The bank's doors as a grid of tiles, with one selected door moved by arrow keys or clicks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.reactive import reactive

from hardware_sim.bank import DoorStatus
from hardware_sim.view.door_tile import DoorTile
from hardware_sim.view.messages import DoorChosen, DoorSelected


class DoorGrid(ScrollableContainer, can_focus=True):
    """Tiles for every door; `selected` is the door the actions apply to.

    The column count is the stylesheet's ``grid-size`` (arrow keys move by it).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    selected: reactive[int] = reactive(1)

    def __init__(self, listing: Sequence[DoorStatus], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._tiles = {status.door.number: DoorTile(status) for status in listing}
        self._numbers = list(self._tiles)
        self.selected = self._numbers[0]

    def on_mount(self) -> None:
        self.mount_all(self._tiles.values())
        self.watch_selected(self.selected)

    def show(self, listing: Sequence[DoorStatus]) -> None:
        """Redraws the tiles whose door changed."""
        for status in listing:
            self._tiles[status.door.number].show(status)

    def tile(self, door: int) -> DoorTile:
        """The tile of door ``door``."""
        return self._tiles[door]

    def watch_selected(self, door: int) -> None:
        for number, tile in self._tiles.items():
            tile.set_class(number == door, "-selected")
        if self.is_mounted:
            self.scroll_to_widget(self._tiles[door], animate=False)
            self.post_message(DoorSelected(door))

    def action_move(self, across: int, down: int) -> None:
        columns = self.styles.grid_size_columns or 1
        index = self._numbers.index(self.selected) + across + down * columns
        if 0 <= index < len(self._numbers):
            self.selected = self._numbers[index]

    def action_first(self) -> None:
        self.selected = self._numbers[0]

    def action_last(self) -> None:
        self.selected = self._numbers[-1]

    def on_door_chosen(self, message: DoorChosen) -> None:
        message.stop()
        self.selected = message.door
        self.focus()
