"""The simulator view's app: header with the device paths, door grid, side panel, scan input.

The boards run in the simulator's background threads and never touch the UI: the app reads the
bank (`SimulatedBank.listing`, under the doors' locks) on a timer and after each action, so a door
that a kiosk pulses over the serial bus shows as open within one refresh. Actions run the same
console commands as ``locker-sim bank`` (`BankCommands`), and their answer is shown on the status
line.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Header, Input, Static

from hardware_sim.bank import DoorStatus, SimulatedBank
from hardware_sim.bank_commands import BankCommands, CommandError
from hardware_sim.view.actions import ACTIONS, BY_NAME
from hardware_sim.view.door_grid import DoorGrid
from hardware_sim.view.door_panel import DoorPanel
from hardware_sim.view.messages import ActionRequested, DoorSelected

REFRESH_S = 0.2
"""How often the view reads the bank."""


class BankViewApp(App[None]):
    """A full-screen view of one simulated bank; build it with `make_app`.

    Args:
        commands: The console commands bound to the bank (and the paths the kiosk opens).
        refresh_s: Seconds between reads of the bank.
        stop_on_sigterm: Exit cleanly on SIGTERM (the command line sets it; tests do not).
    """

    CSS_PATH = Path(__file__).with_name("bank_view.tcss")
    TITLE = "locker-sim bank"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(action.key, f"door_action('{action.name}')", action.label, show=False)
            for action in ACTIONS
        ),
        Binding("slash", "focus_scan", "Scan"),
        Binding("escape", "focus_grid", "Doors", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self, commands: BankCommands, *, refresh_s: float = REFRESH_S, stop_on_sigterm: bool = False
    ) -> None:
        super().__init__()
        self.commands = commands
        self.bank: SimulatedBank = commands.bank
        self.refresh_s = refresh_s
        self.stop_on_sigterm = stop_on_sigterm
        self._previous_sigterm: Any = None
        self.sub_title = f"bus {commands.port} · scanner {commands.scanner_port}"

    def compose(self) -> ComposeResult:
        # Held rather than queried: the refresh timer may fire while the screen is torn down.
        self._grid = DoorGrid(self.bank.listing(), id="grid")
        self._panel = DoorPanel(id="panel")
        self._scan = Input(placeholder="barcode to scan (/ to type here, Enter sends)", id="scan")
        self._status_line = Static(
            "arrows select a door; the keys on the buttons act on it", id="status"
        )
        yield Header(icon="▦")
        yield Static(self.bank.layout.summary(), id="summary")
        with Horizontal(id="main"):
            yield self._grid
            yield self._panel
        yield self._scan
        yield self._status_line
        yield Footer()

    def on_mount(self) -> None:
        self._grid.focus()
        self.refresh_bank()
        self.set_interval(self.refresh_s, self.refresh_bank)
        if self.stop_on_sigterm:
            self._previous_sigterm = signal.getsignal(signal.SIGTERM)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit)

    def on_unmount(self) -> None:
        if self.stop_on_sigterm:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    @property
    def selected_door(self) -> int:
        """The door the actions apply to."""
        return self._grid.selected

    def refresh_bank(self) -> None:
        """Reads every door and board and redraws what changed."""
        listing = self.bank.listing()
        self._grid.show(listing)
        self._panel.show(self._status(listing, self.selected_door))

    def action_door_action(self, name: str) -> None:
        """Runs action ``name`` on the selected door (or its board)."""
        action = BY_NAME[name]
        status = self._status(self.bank.listing(), self.selected_door)
        self._run(action.command(status))

    def action_focus_scan(self) -> None:
        self._scan.focus()

    def action_focus_grid(self) -> None:
        self._grid.focus()

    def on_door_selected(self, message: DoorSelected) -> None:
        self._panel.show(self._status(self.bank.listing(), message.door))

    def on_action_requested(self, message: ActionRequested) -> None:
        self.action_door_action(message.action)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        code = event.value.strip()
        if not code:
            return
        if self._run(f"scan {code}"):
            event.input.clear()

    def _run(self, line: str) -> bool:
        status = self._status_line
        try:
            said = self.commands.run(line)
        except (CommandError, ValueError, OSError) as error:
            status.update(f"error: {error}")
            status.add_class("-error")
            return False
        status.update(said or "")
        status.remove_class("-error")
        self.refresh_bank()
        return True

    @staticmethod
    def _status(listing: list[DoorStatus], door: int) -> DoorStatus:
        return next(status for status in listing if status.door.number == door)


def make_app(
    bank: SimulatedBank,
    *,
    port: str | None = None,
    scanner_port: str | None = None,
    refresh_s: float = REFRESH_S,
    stop_on_sigterm: bool = False,
) -> BankViewApp:
    """The view of ``bank``, shared by ``locker-sim bank --view`` and the tests.

    Args:
        bank: The simulated bank (started or not: the view only reads and drives it).
        port: The boards' path as the kiosk should open it (a link), default the bank's own.
        scanner_port: The scanner's path likewise.
        refresh_s: Seconds between reads of the bank.
        stop_on_sigterm: Exit the app cleanly on SIGTERM.
    """
    commands = BankCommands(bank, port or bank.port, scanner_port or bank.scanner_port)
    return BankViewApp(commands, refresh_s=refresh_s, stop_on_sigterm=stop_on_sigterm)
