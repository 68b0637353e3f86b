"""Doors wired straight to GPIO pins, as a `DoorBank`: a solenoid and a reed switch per door.

Each door has an output pin driving its solenoid (through a driver board: a Pi pin cannot drive a
solenoid itself) and an input pin reading its reed switch. gpiozero is imported when the bank is
built, and its pin factory is gpiozero's own choice (``GPIOZERO_PIN_FACTORY``, or
``Device.pin_factory``; tests set ``MockFactory``) unless one is passed in.

Wiring is configuration: a normally-open reed switch between the pin and ground with the pull-up
on (the default) reads *active* when the door is shut; a normally-closed switch reads active when
it is open (``sensor_active_when_closed = false``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kiosk.hardware.door_bank import DoorBank, DoorState, UnlockTiming


@dataclass(frozen=True, slots=True)
class GpioDoorPins:
    """The two pins of one door, in any form gpiozero accepts (17, ``"GPIO17"``, ``"BOARD11"``).

    Raises:
        ValueError: on construction, when the two pins are the same.
    """

    solenoid: int | str
    sensor: int | str

    def __post_init__(self) -> None:
        if self.solenoid == self.sensor:
            raise ValueError(f"solenoid and sensor cannot share pin {self.solenoid!r}")


@dataclass(frozen=True, slots=True)
class GpioBankConfig:
    """Configuration of GPIO doors (the ``[doors.gpio]`` table).

    Attributes:
        pins: Each door's pins.
        pulse_s: How long the solenoid is energised per unlock.
        solenoid_active_high: Whether a high pin energises the solenoid.
        sensor_pull_up: Whether the sensor pin uses the internal pull-up (else pull-down).
        sensor_active_when_closed: Whether the sensor reads active when the door is shut.
        max_simultaneous_pulses: Solenoids energised at once; more would brown out the supply.

    Raises:
        ValueError: on construction, for no doors, a door number below 1, a pin used twice, a
            pulse outside (0, 5] seconds, or fewer than one simultaneous pulse.
    """

    pins: Mapping[int, GpioDoorPins]
    pulse_s: float = 0.5
    solenoid_active_high: bool = True
    sensor_pull_up: bool = True
    sensor_active_when_closed: bool = True
    max_simultaneous_pulses: int = 1

    def __post_init__(self) -> None:
        if not self.pins:
            raise ValueError("GPIO doors need at least one door in pins")
        seen: dict[int | str, int] = {}
        for door, pins in sorted(self.pins.items()):
            if isinstance(door, bool) or not isinstance(door, int) or door < 1:
                raise ValueError(f"door numbers are positive integers, got {door!r}")
            for pin in (pins.solenoid, pins.sensor):
                if pin in seen:
                    raise ValueError(f"pin {pin!r} is used by doors {seen[pin]} and {door}")
                seen[pin] = door
        # Solenoids are rated for short duty: a stuck-on output would burn one out.
        if not 0 < self.pulse_s <= 5:
            raise ValueError(f"pulse_s must be in (0, 5] seconds, got {self.pulse_s!r}")
        if self.max_simultaneous_pulses < 1:
            raise ValueError("max_simultaneous_pulses must be at least 1")
        object.__setattr__(self, "pins", MappingProxyType(dict(sorted(self.pins.items()))))


class GpioDoorBank(DoorBank):
    """Doors on GPIO pins.

    Args:
        config: Pins and wiring.
        timing: How long `unlock` waits for the sensor.
        pin_factory: A gpiozero pin factory; None for gpiozero's default.

    Raises:
        ImportError: gpiozero is not installed.
        gpiozero.GPIOZeroError: a pin is invalid or already in use (devices opened so far are
            closed again first).
    """

    def __init__(
        self,
        config: GpioBankConfig,
        timing: UnlockTiming | None = None,
        *,
        pin_factory: Any = None,
    ) -> None:
        super().__init__(timing)
        from gpiozero import DigitalInputDevice, OutputDevice  # lazy: only GPIO kiosks need it

        self.config = config
        self._solenoids: dict[int, Any] = {}
        self._sensors: dict[int, Any] = {}
        try:
            for door, pins in config.pins.items():
                self._solenoids[door] = OutputDevice(
                    pins.solenoid,
                    active_high=config.solenoid_active_high,
                    initial_value=False,
                    pin_factory=pin_factory,
                )
                self._sensors[door] = DigitalInputDevice(
                    pins.sensor, pull_up=config.sensor_pull_up, pin_factory=pin_factory
                )
        except BaseException:
            self._close_devices()
            raise
        self._doors = tuple(config.pins)
        self._supply = asyncio.Semaphore(config.max_simultaneous_pulses)
        self._door_locks = {door: asyncio.Lock() for door in self._doors}

    @property
    def doors(self) -> tuple[int, ...]:
        return self._doors

    async def _pulse(self, door: int) -> None:
        solenoid = self._solenoids[door]
        # One pulse per door at a time (a second would be cut short by the first one's off()),
        # and a bounded number across the bank.
        async with self._door_locks[door], self._supply:
            solenoid.on()
            try:
                await asyncio.sleep(self.config.pulse_s)
            finally:
                # Also on cancellation: a solenoid left energised overheats.
                solenoid.off()

    async def read_states(self) -> dict[int, DoorState]:
        return {door: self._state(door) for door in self._doors}

    async def _read_door(self, door: int) -> DoorState:
        return self._state(door)

    async def aclose(self) -> None:
        self._close_devices()

    def _state(self, door: int) -> DoorState:
        if not self._sensors:
            raise RuntimeError("the GPIO door bank is closed")
        active = bool(self._sensors[door].is_active)
        return DoorState.of(is_open=active != self.config.sensor_active_when_closed)

    def _close_devices(self) -> None:
        for device in (*self._solenoids.values(), *self._sensors.values()):
            with contextlib.suppress(Exception):
                device.close()
        self._solenoids.clear()
        self._sensors.clear()
