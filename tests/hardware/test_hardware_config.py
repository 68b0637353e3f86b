"""Hardware configuration: the [doors] and [scanner] tables, the factory, and the docs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.hardware import (
    Backend,
    DoorMap,
    HardwareConfigError,
    LockAddress,
    UnknownDoor,
    create_door_bank,
    parse_door_bank_config,
    parse_scanner_config,
)
from kiosk.hardware.config import DOCUMENTED_KEYS
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.hardware.gpio_bank import GpioDoorBank, GpioDoorPins
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.protocols.kerong import LockBitPolarity
from kiosk.hardware.serial_board import SerialBoardBank

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hardware.md"

SERIAL = """
backend = "serial"
open_timeout_s = 2.5
[serial]
port = "/dev/ttyUSB0"
protocol = "kerong"
lock_bit_polarity = "set_means_open"
retries = 4
boards = [{ address = 0, locks = 16 }, { address = 1, locks = 8 }]
first_door = 101
"""

GPIO = """
backend = "gpio"
[gpio]
pulse_s = 0.3
sensor_active_when_closed = false
[gpio.pins]
1 = { solenoid = 17, sensor = 27 }
2 = { solenoid = "GPIO22", sensor = "GPIO23" }
"""


def _doors(text: str) -> dict[str, object]:
    return tomllib.loads(text)


def test_serial_table_with_boards_numbers_doors_consecutively() -> None:
    config = parse_door_bank_config(_doors(SERIAL))

    assert config.backend is Backend.SERIAL
    assert config.timing.open_timeout_s == 2.5
    serial = config.serial
    assert serial is not None
    assert serial.protocol is BoardProtocol.KERONG
    assert serial.lock_bit_polarity is LockBitPolarity.SET_MEANS_OPEN
    assert serial.retries == 4
    assert serial.request_timeout_s == 0.25, "absent keys keep their defaults"
    assert serial.door_map.doors == tuple(range(101, 125))
    assert serial.door_map.address(117) == LockAddress(1, 1)


def test_serial_table_with_an_explicit_map() -> None:
    text = """
    backend = "serial"
    [serial]
    port = "/dev/ttyUSB0"
    protocol = "8a80"
    map = { "1" = [2, 5], "2" = [1, 1] }
    """
    serial = parse_door_bank_config(_doors(text)).serial

    assert serial is not None
    assert serial.door_map == DoorMap.of({1: (2, 5), 2: (1, 1)})


def test_gpio_table() -> None:
    gpio = parse_door_bank_config(_doors(GPIO)).gpio

    assert gpio is not None
    assert gpio.pulse_s == 0.3
    assert gpio.sensor_active_when_closed is False
    assert gpio.pins[2] == GpioDoorPins("GPIO22", "GPIO23")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('backend = "can-bus"', "doors.backend: 'can-bus' is not one of"),
        ('backend = "serial"', r"doors.serial is required"),
        ('backend = "fake"\nretry = 3', "doors: unknown key 'retry'"),
        ('backend = "fake"\npoll_interval_s = 2', "poll_interval_s must be in"),
        ('backend = "fake"\n[fake]\ndoors = true', "doors.fake.doors: wrong type bool"),
        (
            'backend = "serial"\n[serial]\nport = "/dev/x"\nprotocol = "8a80"',
            "exactly one of 'boards' or 'map'",
        ),
        (
            'backend = "serial"\n[serial]\nport = "/dev/x"\nprotocol = "8a80"\n'
            "boards = [{ address = 40, locks = 4 }]",
            r"door 1 \(board 40 lock 1\): 8A/80 board address must be 1-32",
        ),
        (
            'backend = "serial"\n[serial]\nport = "/dev/x"\nprotocol = "8a80"\n'
            'map = { "1" = [1, 1], "2" = [1, 1] }',
            "doors 1 and 2 are both on board 1 lock 1",
        ),
        (
            'backend = "gpio"\n[gpio.pins]\n1 = { solenoid = 5, sensor = 5 }',
            "cannot share pin 5",
        ),
    ],
)
def test_bad_configuration_names_the_key_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(HardwareConfigError, match=message):
        parse_door_bank_config(_doors(text))


def test_factory_builds_the_configured_backend(mock_factory: MockFactory) -> None:
    assert isinstance(create_door_bank(parse_door_bank_config(_doors(SERIAL))), SerialBoardBank)
    assert isinstance(create_door_bank(parse_door_bank_config({"backend": "fake"})), FakeDoorBank)
    gpio = create_door_bank(parse_door_bank_config(_doors(GPIO)))
    assert isinstance(gpio, GpioDoorBank)
    assert gpio.doors == (1, 2)


def test_scanner_table() -> None:
    config = parse_scanner_config({"port": "/dev/ttyACM0", "baudrate": 115200})
    assert (config.port, config.baudrate, config.max_code_length) == ("/dev/ttyACM0", 115200, 256)
    with pytest.raises(HardwareConfigError, match=r"scanner\.port is required"):
        parse_scanner_config({})


def test_every_configuration_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [key for key in DOCUMENTED_KEYS if f"`{key}`" not in text]
    assert missing == []


def test_every_fault_knob_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    knobs = [
        "jam",
        "kill_solenoid",
        "stick_sensor",
        "force_open",
        "power_off",
        "mute",
        "corrupt_replies",
        "reply_delay_s",
        "noise_before_replies",
        "inject_garbage",
        "answers_unlock",
    ]
    assert [knob for knob in knobs if f"`{knob}" not in text] == []


def test_door_map_sequential_numbering_and_lookups() -> None:
    door_map = DoorMap.sequential([(2, 3), (1, 2)], first_door=10)

    assert door_map.doors == (10, 11, 12, 13, 14)
    assert door_map.address(13) == LockAddress(1, 1)
    assert door_map.door_at(LockAddress(2, 3)) == 12
    assert door_map.door_at(LockAddress(9, 9)) is None
    assert door_map.locks_by_board() == {1: (1, 2), 2: (1, 2, 3)}
    with pytest.raises(
        UnknownDoor, match=r"door 9 is not configured; configured doors are 10\.\.14"
    ):
        door_map.address(9)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [({}, "at least one door"), ({0: (1, 1)}, "positive integers"), ({1: (1, 0)}, "from 1")],
)
def test_bad_door_maps_are_refused(pairs: dict[int, tuple[int, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DoorMap.of(pairs)
