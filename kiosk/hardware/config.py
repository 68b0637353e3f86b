"""Hardware configuration: the ``[doors]`` and ``[scanner]`` tables, and the factory.

The kiosk reads its configuration file (TOML) and hands the two tables here. They are validated by
pydantic models (`DoorsTable`, `ScannerTable`, and each backend's table in
`kiosk.hardware.backends`), strictly: an unknown key, a wrong type or a value out of range raises
`HardwareConfigError` naming the key, so a typo in the field is caught at boot rather than at the
first customer. ``doors.backend`` and ``doors.serial.protocol`` are looked up in their registries;
an unknown name is an error listing the known ones. The backend is chosen once, by
`create_door_bank`; hardware libraries are imported only by the backend that needs them.

Every key is documented in ``docs/hardware.md`` (a test checks that `DOCUMENTED_KEYS` are there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import ValidationError

from kiosk.config_model import Number, PositiveInt, TableModel, first_problem, of_type
from kiosk.hardware.backends import (
    Backend,
    BackendName,
    FakeBankConfig,
    UnknownBackend,
    backend_named,
    known_backends,
)
from kiosk.hardware.door_bank import DoorBank, UnlockTiming
from kiosk.hardware.gpio_bank import GpioBankConfig
from kiosk.hardware.scanner import SerialScanner
from kiosk.hardware.serial_board import SerialBankConfig

M = TypeVar("M", bound=TableModel)

__all__ = [
    "DOCUMENTED_KEYS",
    "Backend",
    "DoorBankConfig",
    "DoorsTable",
    "FakeBankConfig",
    "HardwareConfigError",
    "ScannerConfig",
    "ScannerTable",
    "UnknownBackend",
    "backend_named",
    "create_door_bank",
    "create_scanner",
    "known_backends",
    "parse_door_bank_config",
    "parse_scanner_config",
]


class HardwareConfigError(ValueError):
    """A hardware configuration key is unknown, missing, of the wrong type or out of range."""


@dataclass(frozen=True, slots=True)
class DoorBankConfig:
    """The parsed ``[doors]`` table: the backend and the settings of that backend only.

    Attributes:
        backend: The registered backend ``doors.backend`` names.
        timing: How long an unlock waits for the sensor.
        settings: The backend's settings (`SerialBankConfig`, `GpioBankConfig`,
            `FakeBankConfig` for the built-in ones), from its ``[doors.<backend>]`` table.
    """

    backend: Backend
    timing: UnlockTiming
    settings: Any

    @property
    def doors(self) -> tuple[int, ...]:
        """The door numbers the bank drives, ascending (no hardware is touched)."""
        return self.backend.doors(self.settings)

    @property
    def serial(self) -> SerialBankConfig | None:
        """The serial backend's settings; None for another backend."""
        return self.settings if isinstance(self.settings, SerialBankConfig) else None

    @property
    def gpio(self) -> GpioBankConfig | None:
        """The GPIO backend's settings; None for another backend."""
        return self.settings if isinstance(self.settings, GpioBankConfig) else None

    @property
    def fake(self) -> FakeBankConfig | None:
        """The fake backend's settings; None for another backend."""
        return self.settings if isinstance(self.settings, FakeBankConfig) else None


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """The parsed ``[scanner]`` table."""

    port: str
    baudrate: int = 9600
    max_code_length: int = 256


class DoorsTable(TableModel):
    """The ``[doors]`` table; its keys also include one sub-table per registered backend."""

    extra_keys = known_backends

    backend: BackendName
    open_timeout_s: Number | None = None
    poll_interval_s: Number | None = None


class ScannerTable(TableModel):
    """The ``[scanner]`` table."""

    port: Annotated[str, of_type(str)]
    baudrate: PositiveInt | None = None
    max_code_length: PositiveInt | None = None


DOCUMENTED_KEYS: tuple[str, ...] = (
    "doors.backend",
    "doors.open_timeout_s",
    "doors.poll_interval_s",
    "doors.serial.port",
    "doors.serial.protocol",
    "doors.serial.baudrate",
    "doors.serial.request_timeout_s",
    "doors.serial.retries",
    "doors.serial.unlock_listen_s",
    "doors.serial.lock_bit_polarity",
    "doors.serial.boards",
    "doors.serial.first_door",
    "doors.serial.map",
    "doors.gpio.pins",
    "doors.gpio.pulse_s",
    "doors.gpio.solenoid_active_high",
    "doors.gpio.sensor_pull_up",
    "doors.gpio.sensor_active_when_closed",
    "doors.gpio.max_simultaneous_pulses",
    "doors.fake.doors",
    "doors.fake.occupancy_sensors",
    "scanner.port",
    "scanner.baudrate",
    "scanner.max_code_length",
)


def parse_door_bank_config(table: Mapping[str, Any]) -> DoorBankConfig:
    """Reads the ``[doors]`` table.

    Only the chosen backend's sub-table is read: the others may stay in the file, unused.

    Raises:
        HardwareConfigError: a key is unknown, missing, mistyped or out of range, or
            ``doors.backend`` names no registered backend (the message lists the known ones).
    """
    doors = _validate(DoorsTable, table, "doors")
    given = {key: getattr(doors, key) for key in ("open_timeout_s", "poll_interval_s")}
    try:
        timing = UnlockTiming(**{key: value for key, value in given.items() if value is not None})
    except ValueError as error:
        raise HardwareConfigError(f"doors: {error}") from None
    backend = doors.backend
    path = f"doors.{backend.name}"
    if backend.name not in table and backend.table_required:
        raise HardwareConfigError(f"{path} is required")
    backend_table = _validate(backend.table, table.get(backend.name, {}), path)
    try:
        settings = backend_table.settings()
    except ValueError as error:
        raise HardwareConfigError(f"{path}: {error}") from None
    return DoorBankConfig(backend, timing, settings)


def parse_scanner_config(table: Mapping[str, Any]) -> ScannerConfig:
    """Reads the ``[scanner]`` table.

    Raises:
        HardwareConfigError: a key is unknown, missing, mistyped or out of range.
    """
    scanner = _validate(ScannerTable, table, "scanner")
    options = {
        key: getattr(scanner, key)
        for key in ("baudrate", "max_code_length")
        if key in scanner.model_fields_set
    }
    return ScannerConfig(port=scanner.port, **options)


def create_door_bank(config: DoorBankConfig) -> DoorBank:
    """Builds the configured door bank with its backend's factory.

    Serial banks open their port on first use.

    Raises:
        ImportError: the GPIO backend is chosen and gpiozero is missing.
        gpiozero.GPIOZeroError: a GPIO pin is invalid or taken.
    """
    return config.backend.build(config.settings, config.timing)


def create_scanner(config: ScannerConfig) -> SerialScanner:
    """Builds the configured scanner reader (the port opens when codes are first read)."""
    return SerialScanner(
        config.port, baudrate=config.baudrate, max_code_length=config.max_code_length
    )


def _validate(model: type[M], data: object, path: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise HardwareConfigError(first_problem(error, root=path, style="hardware")) from None
