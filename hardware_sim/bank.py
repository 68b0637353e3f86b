"""A simulated location: a bank of numbered, sized doors on lock boards, and a scanner.

`SimulatedBank` puts the boards of a `BankLayout` on one pseudo-terminal (a `LockBoardSimulator`)
and a `SimulatedScanner` on another, and lets a field tech or a test reach each door by its kiosk
number rather than by (board, lock). `SimulatedBank.listing` reads every door and board at once
for the console's ``doors`` command and the state file.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from hardware_sim.bank_layout import BankDoor, BankLayout
from hardware_sim.doors import DoorSnapshot, SimulatedDoor
from hardware_sim.lock_board import LockBoardSimulator, SimulatedLockBoard
from hardware_sim.scanner import SimulatedScanner
from kiosk.hardware.protocols.kerong import LockBitPolarity


@dataclass(frozen=True, slots=True)
class BoardStatus:
    """A board's faults at one instant."""

    address: int
    locks: int
    powered: bool
    muted: bool
    corrupting: bool
    reply_delay_s: float

    def faults(self) -> list[str]:
        """The board's faults in words; empty when it works."""
        faults = [] if self.powered else ["board off"]
        faults += ["board muted"] if self.muted else []
        faults += ["corrupt replies"] if self.corrupting else []
        faults += [f"replies {self.reply_delay_s:g} s late"] if self.reply_delay_s else []
        return faults

    def as_json(self) -> dict[str, Any]:
        """The status as JSON-ready values."""
        return {
            "address": self.address,
            "locks": self.locks,
            "powered": self.powered,
            "muted": self.muted,
            "corrupting": self.corrupting,
            "reply_delay_s": self.reply_delay_s,
        }


@dataclass(frozen=True, slots=True)
class DoorStatus:
    """A door at one instant: where it is, what it is, and what is wrong with it."""

    door: BankDoor
    state: DoorSnapshot
    board: BoardStatus

    def faults(self) -> list[str]:
        """The door's and its board's faults in words (jamming has a column of its own)."""
        state = self.state
        faults = ["solenoid dead"] if state.solenoid_dead else []
        if state.stuck_sensor is not None:
            faults.append(f"sensor stuck {'open' if state.stuck_sensor else 'closed'}")
        return faults + self.board.faults()

    def as_json(self) -> dict[str, Any]:
        """The status as JSON-ready values (the ``doors json`` listing and the state file)."""
        state = self.state
        stuck = state.stuck_sensor
        return {
            "door": self.door.number,
            "size": self.door.size.value,
            "board": self.door.board,
            "lock": self.door.lock,
            "state": "open" if state.is_open else "locked",
            "sensor": "open" if state.sensor_reads_open else "closed",
            "occupied": state.occupied,
            "jammed": state.jammed,
            "solenoid_dead": state.solenoid_dead,
            "sensor_stuck": None if stuck is None else ("open" if stuck else "closed"),
            "pulses": state.pulses,
            "faults": self.faults(),
        }


class SimulatedBank:
    """The doors of a `BankLayout` on simulated boards, plus a simulated scanner.

    Both pseudo-terminals exist from construction (so their paths can go into a configuration
    before anything is served); `start` serves them, `stop` closes them. Use ``with`` or call
    `start` and `stop`.

    Args:
        layout: Doors, sizes and boards.
        spring_delay_s: Seconds from an effective pulse to a door reading open.
        lock_bit_polarity: Kerong: what a set lock bit means in status replies.
        answers_unlock: Kerong: whether boards answer an unlock.
        scanner_terminator: What the scanner sends after each code.

    Raises:
        ValueError: on construction, for a negative spring delay or a terminator other than
            CR, LF or CR LF.
    """

    def __init__(
        self,
        layout: BankLayout,
        *,
        spring_delay_s: float = 0.1,
        lock_bit_polarity: LockBitPolarity = LockBitPolarity.SET_MEANS_LOCKED,
        answers_unlock: bool = True,
        scanner_terminator: bytes = b"\r",
    ) -> None:
        self.layout = layout
        self.scanner = SimulatedScanner(scanner_terminator)
        try:
            self.bus = LockBoardSimulator(
                layout.protocol,
                dict(layout.boards),
                spring_delay_s=spring_delay_s,
                lock_bit_polarity=lock_bit_polarity,
                answers_unlock=answers_unlock,
            )
        except BaseException:
            self.scanner.stop()  # its pseudo-terminal is open already
            raise

    @property
    def port(self) -> str:
        """The lock boards' device path (the kiosk's ``doors.serial.port``)."""
        return self.bus.path

    @property
    def scanner_port(self) -> str:
        """The scanner's device path (the kiosk's ``scanner.port``)."""
        return self.scanner.path

    def door(self, number: int) -> SimulatedDoor:
        """The simulated door with kiosk number ``number``.

        Raises:
            LayoutError: no such door.
        """
        where = self.layout.door(number)
        return self.bus.door(where.board, where.lock)

    def board(self, address: int) -> SimulatedLockBoard:
        """The board at ``address``.

        Raises:
            ValueError: no such board.
        """
        return self.bus.board(address)

    def boards(self) -> list[BoardStatus]:
        """Every board's faults, in layout order."""
        return [self._board_status(self.bus.board(address)) for address, _ in self.layout.boards]

    def listing(self) -> list[DoorStatus]:
        """Every door, by number."""
        boards = {status.address: status for status in self.boards()}
        return [
            DoorStatus(door, self.bus.door(door.board, door.lock).snapshot(), boards[door.board])
            for door in self.layout.doors
        ]

    def as_json(self) -> dict[str, Any]:
        """Doors, boards and device paths as JSON-ready values."""
        return {
            "protocol": self.layout.protocol.value,
            "port": self.port,
            "scanner_port": self.scanner_port,
            "doors": [status.as_json() for status in self.listing()],
            "boards": [status.as_json() for status in self.boards()],
            "bus_noise": self.bus.noise_before_replies.hex(" "),
        }

    def start(self) -> None:
        """Starts serving both pseudo-terminals. Idempotent."""
        self.bus.start()
        self.scanner.start()

    def stop(self) -> None:
        """Stops serving and closes both pseudo-terminals. Idempotent."""
        self.bus.stop()
        self.scanner.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _board_status(board: SimulatedLockBoard) -> BoardStatus:
        return BoardStatus(
            board.address,
            board.locks,
            board.powered,
            board.muted,
            board.corrupting,
            board.reply_delay_s,
        )
