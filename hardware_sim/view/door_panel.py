"""The side panel: the selected door and its board in words, and a button per action."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Button, Label, Static

from hardware_sim.bank import DoorStatus
from hardware_sim.view.actions import ACTIONS
from hardware_sim.view.messages import ActionRequested


def describe(status: DoorStatus) -> str:
    """The door and its board, spelled out."""
    door, state, board = status.door, status.state, status.board
    stuck = state.stuck_sensor
    lines = [
        f"door {door.number}, {door.size.value}, lock {door.board}:{door.lock}",
        f"{'open' if state.is_open else 'locked'}, sensor reads "
        f"{'open' if state.sensor_reads_open else 'closed'}",
        f"{'parcel inside' if state.occupied else 'empty'}, {state.pulses} pulse(s)",
        f"jammed: {'yes' if state.jammed else 'no'}",
        f"solenoid: {'dead' if state.solenoid_dead else 'working'}",
        f"sensor: {'working' if stuck is None else 'stuck ' + ('open' if stuck else 'closed')}",
        f"board {board.address}: {', '.join(board.faults()) or 'working'}",
    ]
    return "\n".join(lines)


class DoorPanel(VerticalScroll):
    """Details of the selected door, and the action buttons (each posts `ActionRequested`)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Held rather than queried: the app may show a door before this panel's children mount.
        self._details = Static(id="details")

    def compose(self) -> ComposeResult:
        yield self._details
        yield Label("Door", classes="heading")
        for action in ACTIONS:
            if not action.on_board:
                yield self._button(action.name, action.label, action.key)
        yield Label("Board", classes="heading")
        for action in ACTIONS:
            if action.on_board:
                yield self._button(action.name, action.label, action.key)

    @staticmethod
    def _button(name: str, label: str, key: str) -> Button:
        return Button(f"{label} ({key})", id=f"action-{name}", compact=True, classes="action")

    def show(self, status: DoorStatus) -> None:
        """Describes ``status``."""
        self._details.update(describe(status))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id is not None:
            self.post_message(ActionRequested(event.button.id.removeprefix("action-")))
