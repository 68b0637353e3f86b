"""An in-memory door bank that tests and demos drive by hand.

`FakeDoorBank` behaves like hardware that answers instantly: a pulse opens a door unless the door
is jammed or its solenoid is dead, an open door stays open until `FakeDoorBank.close` is called,
and a stuck sensor reads a fixed value whatever the door does. `FakeDoorBank.fail_with` makes every
call raise, as a board that stopped answering would. It counts pulses so tests can check that one
was sent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

from kiosk.hardware.door_bank import DoorBank, DoorState, UnlockTiming
from kiosk.hardware.errors import LockBoardError


@dataclass(slots=True)
class _Door:
    is_open: bool = False
    occupied: bool = False
    jammed: bool = False
    solenoid_dead: bool = False
    stuck_sensor: bool | None = None
    pulses: int = 0

    def sensor_reads_open(self) -> bool:
        return self.is_open if self.stuck_sensor is None else self.stuck_sensor


class FakeDoorBank(DoorBank):
    """Doors in memory, every one shut and empty at the start.

    Args:
        doors: A door count (doors 1..n) or the door numbers.
        timing: How long `unlock` waits for the sensor.
        occupancy_sensors: Whether the doors report occupancy, as IR-equipped boards do.

    Raises:
        ValueError: on construction, for no doors or a door number below 1.
    """

    def __init__(
        self,
        doors: int | Iterable[int] = 12,
        timing: UnlockTiming | None = None,
        *,
        occupancy_sensors: bool = False,
    ) -> None:
        super().__init__(timing)
        numbers = sorted(range(1, doors + 1) if isinstance(doors, int) else set(doors))
        if not numbers or numbers[0] < 1:
            raise ValueError(f"a fake bank needs doors numbered from 1, got {numbers[:3]}")
        self._doors = {door: _Door() for door in numbers}
        self._numbers = tuple(numbers)
        self._occupancy = occupancy_sensors
        self._failure: LockBoardError | None = None
        self.closed = False

    @property
    def doors(self) -> tuple[int, ...]:
        return self._numbers

    async def _pulse(self, door: int) -> None:
        self._raise_failure()
        state = self._doors[door]
        state.pulses += 1
        if not state.jammed and not state.solenoid_dead:
            state.is_open = True

    async def read_states(self) -> dict[int, DoorState]:
        self._raise_failure()
        return {
            number: DoorState.of(
                is_open=door.sensor_reads_open(),
                occupied=door.occupied if self._occupancy else None,
            )
            for number, door in self._doors.items()
        }

    async def aclose(self) -> None:
        self.closed = True

    # The hands of a test: what a customer, a vandal or a broken part does to a door.

    def open_by_hand(self, door: int) -> None:
        """Opens ``door`` without a pulse (a forced door, a staff key)."""
        self._door(door).is_open = True

    def close(self, door: int) -> None:
        """Pushes ``door`` shut; the spring latch locks it."""
        self._door(door).is_open = False

    def jam(self, door: int, jammed: bool = True) -> None:
        """A jammed door stays shut when pulsed (a parcel wedged against it)."""
        self._door(door).jammed = jammed

    def kill_solenoid(self, door: int, dead: bool = True) -> None:
        """A dead solenoid takes the pulse and does nothing."""
        self._door(door).solenoid_dead = dead

    def stick_sensor(self, door: int, reads_open: bool | None) -> None:
        """Makes the sensor read ``reads_open`` whatever the door does; None repairs it."""
        self._door(door).stuck_sensor = reads_open

    def set_occupied(self, door: int, occupied: bool = True) -> None:
        """Puts something in (or takes everything out of) ``door``'s compartment."""
        self._door(door).occupied = occupied

    def fail_with(self, error: LockBoardError | None) -> None:
        """Every later call raises ``error`` (a dead board) until called again with None."""
        self._failure = error

    def pulses(self, door: int) -> int:
        """How many unlock pulses ``door`` has received."""
        return self._door(door).pulses

    def is_open(self, door: int) -> bool:
        """Whether ``door`` is physically open, whatever its sensor says."""
        return self._door(door).is_open

    def _door(self, door: int) -> _Door:
        self.check_door(door)
        return self._doors[door]

    def _raise_failure(self) -> None:
        if self._failure is not None:
            # A fresh copy per call, so tracebacks do not pile up on one exception object.
            raise copy.copy(self._failure)
