"""Door physics for the simulators, with the faults field techs meet.

A `SimulatedDoor` is a spring-loaded door behind a solenoid latch. A pulse releases the latch and
the door springs open (after ``spring_delay_s``) unless it is jammed or the solenoid is dead; it
then stays open until someone closes it. Its sensor reports the door, unless it is stuck.

Doors are shared between a simulator thread (which pulses and reads them) and the test or field
tech driving them, so every method takes the door's lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DoorSnapshot:
    """Everything about a door at one instant, read under its lock (for listings).

    Attributes:
        is_open: The door's physical position.
        sensor_reads_open: What its sensor reports (differs from ``is_open`` when stuck).
        occupied: Whether something is in the compartment.
        jammed: Pulses cannot open it.
        solenoid_dead: Pulses do nothing.
        stuck_sensor: The value the sensor is stuck at, or None when it works.
        pulses: Unlock pulses received so far.
    """

    is_open: bool
    sensor_reads_open: bool
    occupied: bool
    jammed: bool
    solenoid_dead: bool
    stuck_sensor: bool | None
    pulses: int


class SimulatedDoor:
    """One simulated door, shut, latched and empty to begin with.

    Args:
        spring_delay_s: Seconds between an effective pulse and the door reading open.
        clock: Monotonic clock (injectable for tests of the physics alone).

    Raises:
        ValueError: on construction, for a negative spring delay.
    """

    def __init__(
        self, *, spring_delay_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if spring_delay_s < 0:
            raise ValueError(f"spring_delay_s must be 0 or more, got {spring_delay_s!r}")
        self.spring_delay_s = spring_delay_s
        self._clock = clock
        self._lock = threading.Lock()
        self._opens_at: float | None = None
        self._jammed = False
        self._solenoid_dead = False
        self._stuck_sensor: bool | None = None
        self._occupied = False
        self._pulses = 0

    # What the board or the GPIO pins do to the door.

    def pulse(self) -> None:
        """The solenoid is energised: the door springs open unless jammed or the solenoid is dead.

        Pulses are counted even when they achieve nothing, so tests can see one was sent.
        """
        with self._lock:
            self._pulses += 1
            if self._solenoid_dead or self._jammed:
                return
            if self._opens_at is None:
                self._opens_at = self._clock() + self.spring_delay_s

    def sensor_reads_open(self) -> bool:
        """What the door sensor reports: the door's position, or the stuck value."""
        with self._lock:
            if self._stuck_sensor is not None:
                return self._stuck_sensor
            return self._is_open()

    @property
    def is_open(self) -> bool:
        """Whether the door is physically open, whatever its sensor says."""
        with self._lock:
            return self._is_open()

    @property
    def occupied(self) -> bool:
        """Whether something is in the compartment (what an IR sensor sees)."""
        with self._lock:
            return self._occupied

    @property
    def pulses(self) -> int:
        """Unlock pulses received so far, effective or not."""
        with self._lock:
            return self._pulses

    @property
    def jammed(self) -> bool:
        """Whether the door is jammed shut (see `jam`)."""
        with self._lock:
            return self._jammed

    @property
    def solenoid_dead(self) -> bool:
        """Whether the solenoid is dead (see `kill_solenoid`)."""
        with self._lock:
            return self._solenoid_dead

    @property
    def stuck_sensor(self) -> bool | None:
        """The value the sensor is stuck at (True: reads open), or None when it works."""
        with self._lock:
            return self._stuck_sensor

    def snapshot(self) -> DoorSnapshot:
        """Every reading at once, so a listing never shows a door half-way through a change."""
        with self._lock:
            is_open = self._is_open()
            return DoorSnapshot(
                is_open=is_open,
                sensor_reads_open=is_open if self._stuck_sensor is None else self._stuck_sensor,
                occupied=self._occupied,
                jammed=self._jammed,
                solenoid_dead=self._solenoid_dead,
                stuck_sensor=self._stuck_sensor,
                pulses=self._pulses,
            )

    # What a person does.

    def close(self) -> None:
        """Pushes the door shut; the latch catches it."""
        with self._lock:
            self._opens_at = None

    def force_open(self) -> None:
        """Opens the door without a pulse (a crowbar, a staff key): a tamper event for the kiosk."""
        with self._lock:
            self._opens_at = self._clock()

    def set_occupied(self, occupied: bool = True) -> None:
        """Puts a parcel in (True) or takes everything out (False)."""
        with self._lock:
            self._occupied = occupied

    # Faults.

    def jam(self, jammed: bool = True) -> None:
        """A jammed door stays shut when pulsed (a parcel wedged against it, a bent frame)."""
        with self._lock:
            self._jammed = jammed

    def kill_solenoid(self, dead: bool = True) -> None:
        """A dead solenoid (burnt coil, cut wire) takes the pulse and does nothing."""
        with self._lock:
            self._solenoid_dead = dead

    def stick_sensor(self, reads_open: bool | None) -> None:
        """The sensor reads ``reads_open`` whatever the door does; None repairs it."""
        with self._lock:
            self._stuck_sensor = reads_open

    def _is_open(self) -> bool:
        return self._opens_at is not None and self._clock() >= self._opens_at
