"""Door backends: the registry that maps ``doors.backend`` to a factory, and the built-in ones.

A backend is a `Backend` entry: its name (the value of ``doors.backend``), the pydantic model of
its ``[doors.<name>]`` table, the factory that builds its `DoorBank`, and how to list its doors
without touching hardware. `backend_named` looks a name up; an unknown name raises
`UnknownBackend` listing the known ones, so a typo stops the kiosk at boot instead of quietly
driving some other bank.

The built-in backends (``serial``, ``gpio``, ``fake``) are registered at the end of this module.
Their factories import their bank's module when called, so no hardware library is loaded until a
bank is built (and ``import kiosk`` works on any laptop).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BeforeValidator, PlainValidator, field_validator, model_validator

from kiosk.config_model import (
    Flag,
    Number,
    PositiveInt,
    TableModel,
    Whole,
    enum_of,
    of_type,
    problem,
)
from kiosk.hardware.door_map import DoorMap
from kiosk.hardware.gpio_bank import GpioBankConfig, GpioDoorPins
from kiosk.hardware.protocols import BoardProtocol, UnknownProtocol, known_protocols
from kiosk.hardware.protocols import protocol_named as _protocol_named
from kiosk.hardware.protocols.kerong import LockBitPolarity
from kiosk.hardware.serial_board import SerialBankConfig

if TYPE_CHECKING:
    from kiosk.hardware.door_bank import DoorBank, UnlockTiming


class UnknownBackend(ValueError):
    """No registered backend has the name; the message lists the names that are."""


class BackendTable(TableModel):
    """The ``[doors.<backend>]`` table of one backend."""

    @abstractmethod
    def settings(self) -> Any:
        """The backend's settings, built from the table.

        Raises:
            ValueError: the settings do not hold together (the message is prefixed with the
                table's path when reported).
        """


@dataclass(frozen=True, eq=False, slots=True)
class Backend:
    """One door backend, as registered. Instances are compared by identity.

    Attributes:
        name: The value of ``doors.backend``, which is also the name of its table.
        table: The model of ``[doors.<name>]``.
        build: Builds the bank from the table's settings and the unlock timing.
        doors: The door numbers the settings drive, ascending (no hardware is touched).
        table_required: Whether ``[doors.<name>]`` must be given (else it defaults to empty).
    """

    name: str
    table: type[BackendTable]
    build: Callable[[Any, UnlockTiming], DoorBank]
    doors: Callable[[Any], tuple[int, ...]]
    table_required: bool = True

    # The built-in backends under their pre-registry names.
    SERIAL: ClassVar[Backend]
    GPIO: ClassVar[Backend]
    FAKE: ClassVar[Backend]

    @property
    def value(self) -> str:
        """The configuration name (as the enum this class replaced spelled it)."""
        return self.name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Adds ``backend`` to the registry and returns it.

    Raises:
        ValueError: the name is not lower case and stripped, or another backend has it.
    """
    if not backend.name or backend.name != backend.name.strip().lower():
        raise ValueError(f"backend names are lower case, got {backend.name!r}")
    if backend.name in _REGISTRY and _REGISTRY[backend.name] is not backend:
        raise ValueError(f"a door backend named {backend.name!r} is already registered")
    _REGISTRY[backend.name] = backend
    return backend


def unregister_backend(name: str) -> None:
    """Removes a backend from the registry (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def backend_named(name: str) -> Backend:
    """The registered backend called ``name`` (case and surrounding spaces ignored).

    Raises:
        UnknownBackend: no backend has that name; the message lists the known names.
    """
    try:
        return _REGISTRY[name.strip().lower()]
    except KeyError:
        known = ", ".join(repr(known) for known in known_backends())
        raise UnknownBackend(f"unknown door backend {name!r}; known backends: {known}") from None


def known_backends() -> tuple[str, ...]:
    """The names of every registered backend, sorted."""
    return tuple(sorted(_REGISTRY))


def read_backend(value: object) -> Backend:
    """A pydantic validator for ``doors.backend``."""
    if isinstance(value, Backend):
        return value
    if not isinstance(value, str):
        raise problem(f"wrong type {type(value).__name__}")
    try:
        return backend_named(value)
    except UnknownBackend:
        known = ", ".join(repr(name) for name in known_backends())
        raise problem(f"{value!r} is not one of the known backends: {known}") from None


def read_protocol(value: object) -> BoardProtocol:
    """A pydantic validator for ``doors.serial.protocol``."""
    if isinstance(value, BoardProtocol):
        return value
    if not isinstance(value, str):
        raise problem(f"wrong type {type(value).__name__}")
    try:
        return _protocol_named(value)
    except UnknownProtocol:
        known = ", ".join(repr(name) for name in known_protocols())
        raise problem(f"{value!r} is not one of the known protocols: {known}") from None


if TYPE_CHECKING:
    ProtocolName = BoardProtocol
    BackendName = Backend
else:
    # The registries' entries are dataclasses holding callables, which pydantic would try to
    # describe; the validators below are all there is to know about these two fields.
    ProtocolName = Annotated[Any, PlainValidator(read_protocol)]
    BackendName = Annotated[Any, PlainValidator(read_backend)]


def _of_kind(kind: type, value: object) -> object:
    if not isinstance(value, kind):
        raise problem(f"wrong type {type(value).__name__}")
    return value


def _door_number(key: object) -> int:
    try:
        door = int(str(key))
    except ValueError:
        raise problem(f"door numbers are integers, got {key!r}") from None
    if door < 1:
        raise problem(f"door numbers start at 1, got {door}")
    return door


def _given(table: TableModel, *names: str) -> dict[str, Any]:
    # Keys left out keep the settings' own defaults, so defaults live in one place.
    return {name: getattr(table, name) for name in names if name in table.model_fields_set}


# --- serial: lock-control boards on RS-485 -------------------------------------------------


class BoardEntry(TableModel):
    """One entry of ``doors.serial.boards``."""

    address: Whole
    locks: PositiveInt


class SerialTable(BackendTable):
    """The ``[doors.serial]`` table; see `SerialBankConfig`."""

    port: Annotated[str, of_type(str)]
    protocol: ProtocolName
    baudrate: PositiveInt | None = None
    request_timeout_s: Number | None = None
    retries: Whole | None = None
    unlock_listen_s: Number | None = None
    lock_bit_polarity: Annotated[LockBitPolarity, enum_of(LockBitPolarity)] | None = None
    boards: Annotated[list[BoardEntry], BeforeValidator(lambda v: _of_kind(list, v))] | None = None
    first_door: PositiveInt | None = None
    map: Annotated[dict[str, Any], BeforeValidator(lambda v: _of_kind(dict, v))] | None = None

    @field_validator("map")
    @classmethod
    def _map_entries_are_board_and_lock(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, where in (value or {}).items():
            _door_number(key)
            if not (isinstance(where, list | tuple) and len(where) == 2):
                raise problem(f"expected [board, lock], got {where!r}", key=key)
        return value

    @model_validator(mode="after")
    def _boards_or_map(self) -> SerialTable:
        if (self.boards is None) == (self.map is None):
            raise problem("give exactly one of 'boards' or 'map'")
        return self

    def door_map(self) -> DoorMap:
        """The door map from ``boards`` or ``map``. Raises ValueError for a bad map."""
        if self.boards is not None:
            boards = [(entry.address, entry.locks) for entry in self.boards]
            return DoorMap.sequential(boards, self.first_door or 1)
        assert self.map is not None
        return DoorMap.of({int(key): (w[0], w[1]) for key, w in self.map.items()})

    def settings(self) -> SerialBankConfig:
        return SerialBankConfig(
            port=self.port,
            protocol=self.protocol,
            door_map=self.door_map(),
            **_given(
                self,
                "baudrate",
                "request_timeout_s",
                "retries",
                "unlock_listen_s",
                "lock_bit_polarity",
            ),
        )


def _build_serial(settings: SerialBankConfig, timing: UnlockTiming) -> DoorBank:
    from kiosk.hardware.serial_board import SerialBoardBank

    return SerialBoardBank(settings, timing)


# --- gpio: a solenoid and a reed switch per door ---------------------------------------------


class GpioPinsEntry(TableModel):
    """One entry of ``doors.gpio.pins``."""

    solenoid: Annotated[int | str, of_type(int, str)]
    sensor: Annotated[int | str, of_type(int, str)]

    @model_validator(mode="after")
    def _two_pins(self) -> GpioPinsEntry:
        try:
            self.pins()
        except ValueError as error:
            raise problem(str(error)) from None
        return self

    def pins(self) -> GpioDoorPins:
        """The door's pins. Raises ValueError when they are one pin."""
        return GpioDoorPins(self.solenoid, self.sensor)


class GpioTable(BackendTable):
    """The ``[doors.gpio]`` table; see `GpioBankConfig`."""

    pins: Annotated[dict[str, GpioPinsEntry], BeforeValidator(lambda v: _of_kind(dict, v))]
    pulse_s: Number | None = None
    solenoid_active_high: Flag | None = None
    sensor_pull_up: Flag | None = None
    sensor_active_when_closed: Flag | None = None
    max_simultaneous_pulses: PositiveInt | None = None

    @field_validator("pins")
    @classmethod
    def _doors_are_numbers(cls, value: dict[str, GpioPinsEntry]) -> dict[str, GpioPinsEntry]:
        for key in value:
            _door_number(key)
        return value

    def settings(self) -> GpioBankConfig:
        return GpioBankConfig(
            pins={int(key): entry.pins() for key, entry in self.pins.items()},
            **_given(
                self,
                "pulse_s",
                "solenoid_active_high",
                "sensor_pull_up",
                "sensor_active_when_closed",
                "max_simultaneous_pulses",
            ),
        )


def _build_gpio(settings: GpioBankConfig, timing: UnlockTiming) -> DoorBank:
    from kiosk.hardware.gpio_bank import GpioDoorBank

    return GpioDoorBank(settings, timing)


# --- fake: in-memory doors for demos on a laptop ---------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeBankConfig:
    """The in-memory bank for demos on a laptop (the ``[doors.fake]`` table)."""

    doors: int = 12
    occupancy_sensors: bool = False


class FakeTable(BackendTable):
    """The ``[doors.fake]`` table; see `FakeBankConfig`."""

    doors: PositiveInt | None = None
    occupancy_sensors: Flag | None = None

    def settings(self) -> FakeBankConfig:
        return FakeBankConfig(**_given(self, "doors", "occupancy_sensors"))


def _build_fake(settings: FakeBankConfig, timing: UnlockTiming) -> DoorBank:
    from kiosk.hardware.fake_bank import FakeDoorBank

    return FakeDoorBank(settings.doors, timing, occupancy_sensors=settings.occupancy_sensors)


Backend.SERIAL = register_backend(
    Backend("serial", SerialTable, _build_serial, lambda s: s.door_map.doors)
)
Backend.GPIO = register_backend(
    Backend("gpio", GpioTable, _build_gpio, lambda s: tuple(sorted(s.pins)))
)
Backend.FAKE = register_backend(
    Backend(
        "fake",
        FakeTable,
        _build_fake,
        lambda s: tuple(range(1, s.doors + 1)),
        table_required=False,
    )
)
