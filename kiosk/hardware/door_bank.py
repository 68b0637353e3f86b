"""The door bank: the one interface the kiosk uses to unlock doors and read their sensors.

A door bank is every door of a location behind a few async methods: `DoorBank.unlock`,
`DoorBank.read_states` and `DoorBank.watch`. Backends (RS-485 lock boards, GPIO, the in-memory
fake) subclass `DoorBank`; the kiosk never learns which one it has.

Two rules from the field shape `DoorBank.unlock`:

- "Unlock sent" is not "door seen open". After the pulse the bank polls the door's sensor until it
  reads open or ``open_timeout_s`` passes, and says which: `UnlockOutcome.OPENED` or
  `UnlockOutcome.OPEN_NOT_DETECTED` (the UI then offers a retry or another door).
- The pulse is never skipped because the sensor already reads open: a broken sensor cable must not
  lock a customer out of their parcel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Self

from kiosk.hardware.errors import LockBoardError, UnknownDoor

MAX_POLL_INTERVAL_S = 0.5
"""Sensors are polled at least this often, so a door opened and shut again is rarely missed."""


class LockState(StrEnum):
    """What a door's sensor reports.

    The locks are spring latches: a door pushed shut locks itself, so "shut" and "locked" are one
    reading. A sensor that is stuck or cut reports whatever it reports; nothing here can tell.
    """

    LOCKED = "locked"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class DoorState:
    """One door as its sensors see it.

    Attributes:
        lock: Locked (shut) or open.
        occupied: What an occupancy (IR) sensor reports, or None on hardware without one.
    """

    lock: LockState
    occupied: bool | None = None

    @property
    def is_open(self) -> bool:
        return self.lock is LockState.OPEN

    @classmethod
    def of(cls, *, is_open: bool, occupied: bool | None = None) -> DoorState:
        return cls(LockState.OPEN if is_open else LockState.LOCKED, occupied)


class UnlockOutcome(StrEnum):
    """Whether the sensor saw the door open after an unlock pulse was delivered."""

    OPENED = "opened"
    OPEN_NOT_DETECTED = "open_not_detected"


@dataclass(frozen=True, slots=True)
class UnlockResult:
    """The result of a delivered unlock pulse.

    Attributes:
        door: The door that was pulsed.
        outcome: Whether the sensor read open before the timeout.
        elapsed_s: Seconds from the start of the unlock to the open reading (or to the timeout).
        sensor_error: The last error from reading the sensor while waiting, if reads failed; the
            pulse itself was delivered.
    """

    door: int
    outcome: UnlockOutcome
    elapsed_s: float
    sensor_error: str | None = None

    @property
    def opened(self) -> bool:
        return self.outcome is UnlockOutcome.OPENED


@dataclass(frozen=True, slots=True)
class DoorChange:
    """A door whose sensors read differently from the previous poll.

    Attributes:
        door: The door.
        before: Its state at the previous poll.
        after: Its state now.
        observed_at: When the poll that saw the change finished (UTC).
    """

    door: int
    before: DoorState
    after: DoorState
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class UnlockTiming:
    """How long `DoorBank.unlock` waits for the sensor, and how often it looks.

    Raises:
        ValueError: on construction, for a non-positive timeout or a poll interval outside
            (0, 0.5] seconds.
    """

    open_timeout_s: float = 3.0
    poll_interval_s: float = 0.1

    def __post_init__(self) -> None:
        if not self.open_timeout_s > 0:
            raise ValueError(f"open_timeout_s must be positive, got {self.open_timeout_s!r}")
        _check_interval("poll_interval_s", self.poll_interval_s)


class DoorBank(ABC):
    """A bank of doors: unlock one, read every sensor, watch for changes.

    Backends must implement `doors`, `_pulse` and `read_states`. They may override
    `_read_door` (when one door can be read more cheaply than all of them) and `aclose` (to
    release ports and pins). `unlock` and `watch` are implemented here once, so every backend
    has the same semantics; the contract tests hold every backend to them.

    A bank is used from one event loop. It is an async context manager that closes itself.
    """

    def __init__(self, timing: UnlockTiming | None = None) -> None:
        self.timing = timing or UnlockTiming()

    @property
    @abstractmethod
    def doors(self) -> tuple[int, ...]:
        """The configured door numbers, ascending."""

    @abstractmethod
    async def _pulse(self, door: int) -> None:
        """Delivers the unlock pulse to ``door`` (already checked to be configured).

        Must not look at the door's sensor first. Returns once the pulse is delivered (for a
        lock board: once the board has confirmed it heard the request).

        Raises:
            LockBoardError: the pulse could not be delivered, after the backend's retries.
        """

    @abstractmethod
    async def read_states(self) -> dict[int, DoorState]:
        """Reads every door's sensors.

        Returns:
            The state of every configured door, keyed by door number.

        Raises:
            LockBoardError: a board did not answer, or answered garbage, after retries.
        """

    async def _read_door(self, door: int) -> DoorState:
        """Reads one door's sensors. Override when that is cheaper than `read_states`.

        Raises:
            LockBoardError: as `read_states`.
        """
        return (await self.read_states())[door]

    @contextlib.asynccontextmanager
    async def _pulse_turn(self) -> AsyncIterator[None]:
        """Waits until a pulse can go out at once, and keeps it so for the block.

        A backend whose requests queue (a lock-board bus shared with the polls) overrides it
        to hold the queue, so that `unlock`'s ``on_pulse`` runs when the pulse is next, not
        while it waits behind requests that time out.
        """
        yield

    async def aclose(self) -> None:  # noqa: B027 - a backend with nothing to release keeps it
        """Releases the bank's ports or pins. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def check_door(self, door: int) -> None:
        """Raises `UnknownDoor` unless ``door`` is configured."""
        if door not in self.doors:
            raise UnknownDoor(door, self.doors)

    async def unlock(
        self, door: int, *, on_pulse: Callable[[], None] | None = None
    ) -> UnlockResult:
        """Pulses ``door``'s lock, then polls its sensor until it reads open or time runs out.

        The pulse is sent even when the sensor already reads open. Sensor read errors after the
        pulse do not raise: the pulse was delivered, so the result is `OPEN_NOT_DETECTED` (unless
        a later read sees the door open) and the error is kept in `UnlockResult.sensor_error`.

        Args:
            door: The door.
            on_pulse: Called once the pulse has its turn, just before it goes out (the kiosk
                records there that the pulse may have reached the door). If it raises, nothing
                is sent.

        Raises:
            UnknownDoor: ``door`` is not configured.
            LockBoardError: the pulse could not be delivered. The door may still have opened
                (a board may act on a request whose reply is lost); the watch will report it.
        """
        self.check_door(door)
        started = time.monotonic()
        async with self._pulse_turn():
            if on_pulse is not None:
                on_pulse()
            await self._pulse(door)
        deadline = started + self.timing.open_timeout_s
        sensor_error: str | None = None
        while True:
            try:
                state = await self._read_door(door)
            except LockBoardError as error:
                sensor_error = f"{type(error).__name__}: {error}"
            else:
                if state.is_open:
                    return UnlockResult(
                        door, UnlockOutcome.OPENED, time.monotonic() - started, sensor_error
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return UnlockResult(
                    door, UnlockOutcome.OPEN_NOT_DETECTED, time.monotonic() - started, sensor_error
                )
            await asyncio.sleep(min(self.timing.poll_interval_s, remaining))

    async def watch(
        self,
        interval_s: float = MAX_POLL_INTERVAL_S,
        *,
        baseline: Mapping[int, DoorState] | None = None,
    ) -> AsyncGenerator[DoorChange, None]:
        """Polls every door every ``interval_s`` and yields each change, and only changes.

        Polls run on a fixed cadence (a slow poll does not push later ones back). Close the
        generator (``aclose()``, or leave an ``async for``) to stop polling. The first poll
        is compared with ``baseline`` when given, so that nothing is lost between a caller's own
        `read_states` and the start of the watch; without a baseline it only sets the baseline.

        Args:
            interval_s: Seconds between polls, at most 0.5.
            baseline: The states the caller last knew.

        Raises:
            ValueError: ``interval_s`` is not in (0, 0.5].
            LockBoardError: a poll failed after the backend's retries. The iterator is then
                finished; call `watch` again with the last known states as ``baseline``.
        """
        _check_interval("interval_s", interval_s)
        previous = dict(baseline) if baseline is not None else None
        next_poll = time.monotonic()
        while True:
            current = await self.read_states()
            if previous is not None:
                now = datetime.now(UTC)
                for door in self.doors:
                    before, after = previous.get(door), current[door]
                    if before is not None and before != after:
                        yield DoorChange(door, before, after, now)
            previous = current
            next_poll += interval_s
            # A poll that overran is not followed by a burst of catch-up polls.
            next_poll = max(next_poll, time.monotonic())
            await asyncio.sleep(next_poll - time.monotonic())


def _check_interval(name: str, value: float) -> None:
    if not 0 < value <= MAX_POLL_INTERVAL_S:
        raise ValueError(f"{name} must be in (0, {MAX_POLL_INTERVAL_S}] seconds, got {value!r}")
