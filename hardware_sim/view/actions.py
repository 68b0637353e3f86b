"""What the view can do to the selected door and its board, as console command lines.

Each action reads the door's current status and returns the ``locker-sim bank`` console line that
does it (toggles pick their direction from the status: a jammed door is unjammed). Running the
same `BankCommands` as the console keeps the view's answers in the console's words
(``door 3: jammed``). Pure: no Textual here, so the table is shared by key bindings and buttons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hardware_sim.bank import DoorStatus


@dataclass(frozen=True, slots=True)
class ViewAction:
    """One action of the view.

    Attributes:
        name: Identifier (button id suffix, binding argument).
        key: The key that runs it.
        label: The button's text.
        on_board: Whether it acts on the door's board rather than the door.
        command: The console line for a door in a given state.
    """

    name: str
    key: str
    label: str
    on_board: bool
    command: Callable[[DoorStatus], str]


def _sensor(status: DoorStatus) -> str:
    # Cycle: working -> stuck open -> stuck closed -> working.
    stuck = status.state.stuck_sensor
    following = {None: "open", True: "closed", False: "off"}[stuck]
    return f"stick-sensor {status.door.number} {following}"


ACTIONS: tuple[ViewAction, ...] = (
    ViewAction("close", "c", "Close", False, lambda s: f"close {s.door.number}"),
    ViewAction("open", "o", "Open by hand", False, lambda s: f"open {s.door.number}"),
    ViewAction("pulse", "p", "Pulse solenoid", False, lambda s: f"pulse {s.door.number}"),
    ViewAction(
        "jam",
        "j",
        "Jam / unjam",
        False,
        lambda s: f"{'unjam' if s.state.jammed else 'jam'} {s.door.number}",
    ),
    ViewAction(
        "solenoid",
        "k",
        "Kill / fix solenoid",
        False,
        lambda s: f"kill-solenoid {s.door.number}{' off' if s.state.solenoid_dead else ''}",
    ),
    ViewAction("sensor", "s", "Stick sensor (cycle)", False, _sensor),
    ViewAction(
        "parcel",
        "i",
        "Parcel in / out",
        False,
        lambda s: f"{'take' if s.state.occupied else 'put'} {s.door.number}",
    ),
    ViewAction(
        "power",
        "w",
        "Cut / restore power",
        True,
        lambda s: f"power {'off' if s.board.powered else 'on'} {s.board.address}",
    ),
    ViewAction(
        "mute",
        "m",
        "Mute / unmute",
        True,
        lambda s: f"{'unmute' if s.board.muted else 'mute'} {s.board.address}",
    ),
    ViewAction(
        "corrupt",
        "x",
        "Corrupt on / off",
        True,
        lambda s: f"corrupt {'off' if s.board.corrupting else 'on'} {s.board.address}",
    ),
)

BY_NAME = {action.name: action for action in ACTIONS}
