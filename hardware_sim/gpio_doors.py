"""Simulated GPIO doors on gpiozero's MockFactory: solenoids that open doors, reed switches.

`SimulatedGpioDoors` claims each door's two pins in a ``MockFactory`` before the kiosk's
`GpioDoorBank` opens them, with pin classes wired to a `SimulatedDoor`:

- the solenoid pin pulses the door when the kiosk energises it;
- the sensor pin's level is computed from the door whenever it is read, so a door that springs
  open after a delay, or is closed by a test, is seen without anyone driving the pin.

Wiring (pull-up, which level means shut) follows the same `GpioBankConfig` the bank uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from hardware_sim.doors import SimulatedDoor
from kiosk.hardware.gpio_bank import GpioBankConfig


class _SolenoidPin(MockPin):  # type: ignore[misc]  # gpiozero has no type hints
    """An output pin that tells its door when the solenoid is energised."""

    def __init__(self, factory: Any, info: Any, on_level: Callable[[bool], None]) -> None:
        super().__init__(factory, info)
        self._on_level = on_level

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self._on_level(bool(value))
        return changed


class _ReedSwitchPin(MockPin):  # type: ignore[misc]
    """An input pin whose level is the door's sensor reading, computed on every read."""

    def __init__(self, factory: Any, info: Any, level: Callable[[], bool]) -> None:
        super().__init__(factory, info)
        self._level = level

    def _get_state(self) -> bool:
        return self._level()


class SimulatedGpioDoors:
    """The doors of a GPIO kiosk, simulated on ``factory``.

    Create it before the `GpioDoorBank` that uses the same ``factory`` and ``config``.

    Args:
        factory: The MockFactory the bank will use (``Device.pin_factory`` in tests).
        config: The bank's configuration: pins and wiring.
        spring_delay_s: Seconds from a pulse to a door reading open.

    Raises:
        ValueError: a pin is already claimed in ``factory`` by a different pin class.
    """

    def __init__(
        self, factory: MockFactory, config: GpioBankConfig, *, spring_delay_s: float = 0.0
    ) -> None:
        self.config = config
        self.doors = {door: SimulatedDoor(spring_delay_s=spring_delay_s) for door in config.pins}
        for door, pins in config.pins.items():
            simulated = self.doors[door]
            factory.pin(
                pins.solenoid, pin_class=_SolenoidPin, on_level=self._solenoid_handler(simulated)
            )
            factory.pin(pins.sensor, pin_class=_ReedSwitchPin, level=self._sensor_level(simulated))

    def door(self, door: int) -> SimulatedDoor:
        """The simulated door with kiosk number ``door``.

        Raises:
            ValueError: no such door in the configuration.
        """
        try:
            return self.doors[door]
        except KeyError:
            raise ValueError(f"no simulated GPIO door {door}") from None

    def _solenoid_handler(self, door: SimulatedDoor) -> Callable[[bool], None]:
        active_high = self.config.solenoid_active_high

        def on_level(high: bool) -> None:
            if high == active_high:
                door.pulse()

        return on_level

    def _sensor_level(self, door: SimulatedDoor) -> Callable[[], bool]:
        config = self.config

        def level() -> bool:
            shut = not door.sensor_reads_open()
            active = shut if config.sensor_active_when_closed else not shut
            # With a pull-up, an active (closed) switch pulls the pin low.
            return not active if config.sensor_pull_up else active

        return level
