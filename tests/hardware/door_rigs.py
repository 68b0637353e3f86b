"""Rigs for the door-bank contract tests: a door bank plus the hands that drive its doors.

Every backend gets a rig with the same hands (open a door by hand, close it, jam it, kill its
solenoid, stick its sensor, count its pulses), so one suite of tests runs over all of them:

- ``fake``: `FakeDoorBank`, driven directly;
- ``gpio``: `GpioDoorBank` on gpiozero's MockFactory with `SimulatedGpioDoors`;
- ``serial-8a80`` / ``serial-kerong``: `SerialBoardBank` over a real pseudo-terminal to a
  `LockBoardSimulator`, two boards on the bus.

Timings are short so the whole hardware suite stays fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from gpiozero.pins.mock import MockFactory

from hardware_sim.doors import SimulatedDoor
from hardware_sim.gpio_doors import SimulatedGpioDoors
from hardware_sim.lock_board import LockBoardSimulator
from kiosk.hardware import BoardTimeout, DoorBank, DoorMap, UnlockTiming
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.hardware.gpio_bank import GpioBankConfig, GpioDoorBank, GpioDoorPins
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.serial_board import SerialBankConfig, SerialBoardBank

DOORS = 8
TIMING = UnlockTiming(open_timeout_s=0.3, poll_interval_s=0.02)
SPRING_DELAY_S = 0.02
REQUEST_TIMEOUT_S = 0.05
RETRIES = 2


class DoorRig(ABC):
    """A door bank under test, doors 1..8, and hands to drive the doors."""

    name: str
    bank: DoorBank
    has_occupancy: bool = False

    @abstractmethod
    def open_by_hand(self, door: int) -> None: ...

    @abstractmethod
    def close(self, door: int) -> None: ...

    @abstractmethod
    def jam(self, door: int) -> None: ...

    @abstractmethod
    def kill_solenoid(self, door: int) -> None: ...

    @abstractmethod
    def stick_sensor(self, door: int, reads_open: bool | None) -> None: ...

    @abstractmethod
    def set_occupied(self, door: int) -> None: ...

    @abstractmethod
    def pulses(self, door: int) -> int: ...

    @abstractmethod
    def is_open(self, door: int) -> bool:
        """Whether the door is physically open, whatever its sensor says."""

    async def aclose(self) -> None:
        await self.bank.aclose()


class BusRig(DoorRig):
    """A rig whose doors sit behind a board that can stop answering."""

    @abstractmethod
    def go_silent(self) -> None: ...

    @abstractmethod
    def come_back(self) -> None: ...


class SimulatedDoorsRig(DoorRig):
    """Hands that work on `SimulatedDoor` objects."""

    @abstractmethod
    def door(self, door: int) -> SimulatedDoor: ...

    def open_by_hand(self, door: int) -> None:
        self.door(door).force_open()

    def close(self, door: int) -> None:
        self.door(door).close()

    def jam(self, door: int) -> None:
        self.door(door).jam()

    def kill_solenoid(self, door: int) -> None:
        self.door(door).kill_solenoid()

    def stick_sensor(self, door: int, reads_open: bool | None) -> None:
        self.door(door).stick_sensor(reads_open)

    def set_occupied(self, door: int) -> None:
        self.door(door).set_occupied()

    def pulses(self, door: int) -> int:
        return self.door(door).pulses

    def is_open(self, door: int) -> bool:
        return self.door(door).is_open


class FakeRig(BusRig):
    name = "fake"
    has_occupancy = True

    def __init__(self) -> None:
        self.fake = FakeDoorBank(DOORS, TIMING, occupancy_sensors=True)
        self.bank = self.fake

    def open_by_hand(self, door: int) -> None:
        self.fake.open_by_hand(door)

    def close(self, door: int) -> None:
        self.fake.close(door)

    def jam(self, door: int) -> None:
        self.fake.jam(door)

    def kill_solenoid(self, door: int) -> None:
        self.fake.kill_solenoid(door)

    def stick_sensor(self, door: int, reads_open: bool | None) -> None:
        self.fake.stick_sensor(door, reads_open)

    def set_occupied(self, door: int) -> None:
        self.fake.set_occupied(door)

    def pulses(self, door: int) -> int:
        return self.fake.pulses(door)

    def is_open(self, door: int) -> bool:
        return self.fake.is_open(door)

    def go_silent(self) -> None:
        self.fake.fail_with(BoardTimeout("the fake board is silent"))

    def come_back(self) -> None:
        self.fake.fail_with(None)


class GpioRig(SimulatedDoorsRig):
    name = "gpio"

    def __init__(self, factory: MockFactory, config: GpioBankConfig | None = None) -> None:
        self.config = config or gpio_config()
        self.simulated = SimulatedGpioDoors(factory, self.config, spring_delay_s=SPRING_DELAY_S)
        self.bank = GpioDoorBank(self.config, TIMING)

    def door(self, door: int) -> SimulatedDoor:
        return self.simulated.door(door)


def gpio_config(**wiring: bool) -> GpioBankConfig:
    # Solenoids on GPIO4-11, reed switches on GPIO16-23 (clear of the fixed pull-ups of I2C).
    pins = {door: GpioDoorPins(solenoid=3 + door, sensor=15 + door) for door in range(1, 9)}
    return GpioBankConfig(pins, pulse_s=0.01, **wiring)


class SerialRig(BusRig, SimulatedDoorsRig):
    """Doors 1-4 on the first board, 5-8 on the second, both on one simulated bus."""

    BOARDS: ClassVar[dict[BoardProtocol, tuple[int, int]]] = {
        BoardProtocol.EIGHT_A: (1, 2),
        BoardProtocol.KERONG: (0, 1),
    }

    def __init__(self, protocol: BoardProtocol) -> None:
        self.name = f"serial-{protocol}"
        self.protocol = protocol
        self.has_occupancy = protocol is BoardProtocol.KERONG
        first, second = self.BOARDS[protocol]
        self.sim = LockBoardSimulator(
            protocol, {first: 4, second: 4}, spring_delay_s=SPRING_DELAY_S
        )
        self.sim.start()
        self.door_map = DoorMap.sequential([(first, 4), (second, 4)])
        config = SerialBankConfig(
            port=self.sim.path,
            protocol=protocol,
            door_map=self.door_map,
            request_timeout_s=REQUEST_TIMEOUT_S,
            retries=RETRIES,
            unlock_listen_s=0.01,
        )
        self.bank = SerialBoardBank(config, TIMING)

    def door(self, door: int) -> SimulatedDoor:
        where = self.door_map.address(door)
        return self.sim.door(where.board, where.lock)

    def go_silent(self) -> None:
        for board in self.sim.boards.values():
            board.power_off()

    def come_back(self) -> None:
        for board in self.sim.boards.values():
            board.power_on()

    def corrupt_replies(self, *, always: bool | None = None, next_n: int | None = None) -> None:
        for board in self.sim.boards.values():
            board.corrupt_replies(always=always, next_n=next_n)

    async def aclose(self) -> None:
        await super().aclose()
        self.sim.stop()
