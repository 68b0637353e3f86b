"""Hardware configuration: the ``[doors]`` and ``[scanner]`` tables, and the factory.

The kiosk reads its configuration file (TOML) and hands the two tables here. Parsing is strict: an
unknown key, a wrong type or a value out of range raises `HardwareConfigError` naming the key, so a
typo in the field is caught at boot rather than at the first customer. The backend is chosen once,
by `create_door_bank`; hardware libraries are imported only by the backend that needs them.

Every key is documented in ``docs/hardware.md`` (a test checks that `DOCUMENTED_KEYS` are there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from kiosk.hardware.door_bank import DoorBank, UnlockTiming
from kiosk.hardware.door_map import DoorMap
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.hardware.gpio_bank import GpioBankConfig, GpioDoorPins
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.protocols.kerong import LockBitPolarity
from kiosk.hardware.scanner import SerialScanner
from kiosk.hardware.serial_board import SerialBankConfig

V = TypeVar("V")


class HardwareConfigError(ValueError):
    """A hardware configuration key is unknown, missing, of the wrong type or out of range."""


class Backend(StrEnum):
    """Which door bank the kiosk drives (key ``doors.backend``)."""

    SERIAL = "serial"
    GPIO = "gpio"
    FAKE = "fake"


@dataclass(frozen=True, slots=True)
class FakeBankConfig:
    """The in-memory bank for demos on a laptop (the ``[doors.fake]`` table)."""

    doors: int = 12
    occupancy_sensors: bool = False


@dataclass(frozen=True, slots=True)
class DoorBankConfig:
    """The parsed ``[doors]`` table: the backend and the settings of that backend only.

    Raises:
        ValueError: on construction, when the chosen backend's settings are missing.
    """

    backend: Backend
    timing: UnlockTiming
    serial: SerialBankConfig | None = None
    gpio: GpioBankConfig | None = None
    fake: FakeBankConfig | None = None

    def __post_init__(self) -> None:
        if getattr(self, self.backend.value) is None:
            raise ValueError(
                f"backend {self.backend.value!r} needs its [doors.{self.backend}] table"
            )


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """The parsed ``[scanner]`` table."""

    port: str
    baudrate: int = 9600
    max_code_length: int = 256


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

    Raises:
        HardwareConfigError: a key is unknown, missing, mistyped or out of range.
    """
    t = _Table(table, "doors")
    t.only("backend", "open_timeout_s", "poll_interval_s", "serial", "gpio", "fake")
    backend = t.enum("backend", Backend)
    timing = t.build(UnlockTiming, **t.pick(open_timeout_s=t.number, poll_interval_s=t.number))
    # Only the chosen backend's table is read: the others may stay in the file, unused.
    if backend is Backend.SERIAL:
        return DoorBankConfig(backend, timing, serial=_serial(t.table("serial")))
    if backend is Backend.GPIO:
        return DoorBankConfig(backend, timing, gpio=_gpio(t.table("gpio")))
    return DoorBankConfig(backend, timing, fake=_fake(t.table("fake", required=False)))


def parse_scanner_config(table: Mapping[str, Any]) -> ScannerConfig:
    """Reads the ``[scanner]`` table.

    Raises:
        HardwareConfigError: a key is unknown, missing, mistyped or out of range.
    """
    t = _Table(table, "scanner")
    t.only("port", "baudrate", "max_code_length")
    options = t.pick(baudrate=t.positive_int, max_code_length=t.positive_int)
    return ScannerConfig(port=t.get("port", str), **options)


def create_door_bank(config: DoorBankConfig) -> DoorBank:
    """Builds the configured door bank. Serial banks open their port on first use.

    Raises:
        ImportError: the GPIO backend is chosen and gpiozero is missing.
        gpiozero.GPIOZeroError: a GPIO pin is invalid or taken.
    """
    if config.serial is not None and config.backend is Backend.SERIAL:
        from kiosk.hardware.serial_board import SerialBoardBank

        return SerialBoardBank(config.serial, config.timing)
    if config.gpio is not None and config.backend is Backend.GPIO:
        from kiosk.hardware.gpio_bank import GpioDoorBank

        return GpioDoorBank(config.gpio, config.timing)
    fake = config.fake or FakeBankConfig()
    return FakeDoorBank(fake.doors, config.timing, occupancy_sensors=fake.occupancy_sensors)


def create_scanner(config: ScannerConfig) -> SerialScanner:
    """Builds the configured scanner reader (the port opens when codes are first read)."""
    return SerialScanner(
        config.port, baudrate=config.baudrate, max_code_length=config.max_code_length
    )


def _serial(t: _Table) -> SerialBankConfig:
    t.only(
        "port",
        "protocol",
        "baudrate",
        "request_timeout_s",
        "retries",
        "unlock_listen_s",
        "lock_bit_polarity",
        "boards",
        "first_door",
        "map",
    )
    # Keys left out keep the dataclass's defaults, so defaults live in one place.
    options = t.pick(
        baudrate=t.positive_int,
        request_timeout_s=t.number,
        retries=lambda key: t.get(key, int),
        unlock_listen_s=t.number,
        lock_bit_polarity=lambda key: t.enum(key, LockBitPolarity),
    )
    return t.build(
        SerialBankConfig,
        port=t.get("port", str),
        protocol=t.enum("protocol", BoardProtocol),
        door_map=_door_map(t),
        **options,
    )


def _door_map(t: _Table) -> DoorMap:
    has_boards, has_map = "boards" in t.data, "map" in t.data
    if has_boards == has_map:
        raise HardwareConfigError(f"{t.path}: give exactly one of 'boards' or 'map'")
    if has_boards:
        boards: list[tuple[int, int]] = []
        for i, entry in enumerate(t.get("boards", list)):
            board = _Table(entry, f"{t.path}.boards[{i}]")
            board.only("address", "locks")
            boards.append((board.get("address", int), board.positive_int("locks")))
        first = t.positive_int("first_door", 1)
        return t.build(DoorMap.sequential, boards, first)
    pairs: dict[int, tuple[int, int]] = {}
    for key, where in t.get("map", dict).items():
        door = _door_number(key, f"{t.path}.map")
        if not (isinstance(where, list | tuple) and len(where) == 2):
            raise HardwareConfigError(f"{t.path}.map.{key}: expected [board, lock], got {where!r}")
        pairs[door] = (where[0], where[1])
    return t.build(DoorMap.of, pairs)


def _gpio(t: _Table) -> GpioBankConfig:
    t.only(
        "pins",
        "pulse_s",
        "solenoid_active_high",
        "sensor_pull_up",
        "sensor_active_when_closed",
        "max_simultaneous_pulses",
    )
    pins: dict[int, GpioDoorPins] = {}
    for key, entry in t.get("pins", dict).items():
        door = _door_number(key, f"{t.path}.pins")
        p = _Table(entry, f"{t.path}.pins.{key}")
        p.only("solenoid", "sensor")
        pins[door] = p.build(GpioDoorPins, p.get("solenoid", int | str), p.get("sensor", int | str))
    options = t.pick(
        pulse_s=t.number,
        solenoid_active_high=lambda key: t.get(key, bool),
        sensor_pull_up=lambda key: t.get(key, bool),
        sensor_active_when_closed=lambda key: t.get(key, bool),
        max_simultaneous_pulses=t.positive_int,
    )
    return t.build(GpioBankConfig, pins=pins, **options)


def _fake(t: _Table) -> FakeBankConfig:
    t.only("doors", "occupancy_sensors")
    options = t.pick(doors=t.positive_int, occupancy_sensors=lambda key: t.get(key, bool))
    return FakeBankConfig(**options)


def _door_number(key: object, path: str) -> int:
    try:
        door = int(str(key))
    except ValueError:
        raise HardwareConfigError(f"{path}: door numbers are integers, got {key!r}") from None
    if door < 1:
        raise HardwareConfigError(f"{path}: door numbers start at 1, got {door}")
    return door


_MISSING: Any = object()


class _Table:
    """One configuration table, with its dotted path for error messages."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise HardwareConfigError(f"{path}: expected a table, got {data!r}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def only(self, *keys: str) -> None:
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            known = ", ".join(keys)
            raise HardwareConfigError(f"{self.path}: unknown key {unknown[0]!r}; known: {known}")

    def get(self, key: str, kind: Any, default: Any = _MISSING) -> Any:
        if key not in self.data:
            if default is _MISSING:
                raise HardwareConfigError(f"{self.path}.{key} is required")
            return default
        value = self.data[key]
        # TOML has no int/bool confusion, but Python callers do: True is not a pin number.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise HardwareConfigError(f"{self.path}.{key}: wrong type {type(value).__name__}")
        return value

    def number(self, key: str) -> float:
        return float(self.get(key, int | float))

    def positive_int(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, int, default)
        if value is not None and value < 1:
            raise HardwareConfigError(f"{self.path}.{key} must be at least 1, got {value}")
        return value

    def enum(self, key: str, kind: type[StrEnum], default: Any = _MISSING) -> Any:
        value = self.get(key, str | kind, default)
        try:
            return kind(value.strip().lower() if isinstance(value, str) else value)
        except ValueError:
            names = ", ".join(repr(member.value) for member in kind)
            raise HardwareConfigError(
                f"{self.path}.{key}: {value!r} is not one of {names}"
            ) from None

    def table(self, key: str, *, required: bool = True) -> _Table:
        if key not in self.data and not required:
            return _Table({}, f"{self.path}.{key}")
        return _Table(self.get(key, Mapping), f"{self.path}.{key}")

    def pick(self, **readers: Callable[[str], Any]) -> dict[str, Any]:
        """Reads the keys that are present, each with its reader; absent keys are left out."""
        return {key: read(key) for key, read in readers.items() if key in self.data}

    def build(self, factory: Callable[..., V], *args: Any, **kwargs: Any) -> V:
        """Calls a validating constructor, turning its ValueError into a configuration error."""
        try:
            return factory(*args, **kwargs)
        except ValueError as error:
            raise HardwareConfigError(f"{self.path}: {error}") from None
