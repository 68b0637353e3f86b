"""One door in the grid: its number, size, lock, state, contents and faults, at a glance."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Static

from hardware_sim.bank import DoorStatus
from hardware_sim.view.messages import DoorChosen


def door_tags(status: DoorStatus) -> str:
    """The door's faults in tile shorthand (the side panel spells them out)."""
    state = status.state
    tags = ["JAM"] if state.jammed else []
    tags += ["DEAD"] if state.solenoid_dead else []
    if state.stuck_sensor is not None:
        tags.append("SNS:O" if state.stuck_sensor else "SNS:C")
    return " ".join(tags)


def board_tags(status: DoorStatus) -> str:
    """The board's faults in tile shorthand."""
    board = status.board
    tags = [] if board.powered else ["OFF"]
    tags += ["MUTE"] if board.muted else []
    tags += ["CRC"] if board.corrupting else []
    tags += ["SLOW"] if board.reply_delay_s else []
    return " ".join(tags)


class DoorTile(Static):
    """A door of the bank, redrawn by `show`. A click selects it (posts `DoorChosen`)."""

    def __init__(self, status: DoorStatus) -> None:
        super().__init__(id=f"door-{status.door.number}", classes="door-tile")
        self.number = status.door.number
        self._shown: DoorStatus | None = None
        self.border_title = f"{status.door.number} {status.door.size.value}"
        self.border_subtitle = f"{status.door.board}:{status.door.lock}"
        self.show(status)

    def show(self, status: DoorStatus) -> None:
        """Draws ``status``; does nothing when it is what is shown already."""
        if status == self._shown:
            return
        self._shown = status
        state = status.state
        text = Text()
        text.append("OPEN" if state.is_open else "locked", style="bold" if state.is_open else "")
        if state.sensor_reads_open != state.is_open:
            text.append(" (sensor " + ("open)" if state.sensor_reads_open else "shut)"))
        text.append("\n" + ("■ parcel" if state.occupied else "· empty"))
        text.append("\n" + door_tags(status))
        text.append("\n" + board_tags(status))
        self.update(text)
        self.set_class(state.is_open, "-open")
        self.set_class(state.occupied, "-occupied")
        self.set_class(bool(door_tags(status)), "-faulty")
        self.set_class(not status.board.powered, "-unpowered")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(DoorChosen(self.number))
