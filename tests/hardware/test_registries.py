"""The protocol and backend registries: names are looked up, never guessed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from kiosk.hardware import (
    Backend,
    HardwareConfigError,
    UnknownBackend,
    backend_named,
    create_door_bank,
    known_backends,
    parse_door_bank_config,
    register_backend,
)
from kiosk.hardware.backends import FakeTable, unregister_backend
from kiosk.hardware.door_bank import UnlockTiming
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.hardware.protocols import (
    BoardProtocol,
    UnknownProtocol,
    eight_a,
    kerong,
    known_protocols,
    protocol_named,
    register_protocol,
    unregister_protocol,
)
from kiosk.hardware.serial_board import SerialBoardBank

SERIAL = {"port": "/dev/ttyUSB0", "boards": [{"address": 1, "locks": 2}]}


@pytest.fixture
def extra_protocol() -> Iterator[BoardProtocol]:
    protocol = register_protocol(
        BoardProtocol(
            name="test-board",
            title="Test",
            baudrate=4800,
            first_board=1,
            last_board=4,
            max_locks=8,
            validate_address=eight_a.validate_address,
            request_frame=eight_a.REQUEST_FRAME,
            dialect=eight_a.PROTOCOL.dialect,
        )
    )
    yield protocol
    unregister_protocol(protocol.name)


def test_the_built_in_protocols_are_registered_by_their_modules() -> None:
    assert known_protocols() == ("8a80", "kerong")
    assert protocol_named("8A80 ") is eight_a.PROTOCOL is BoardProtocol.EIGHT_A
    assert protocol_named("kerong") is kerong.PROTOCOL is BoardProtocol.KERONG
    assert kerong.PROTOCOL.baudrate == 19200


def test_an_unknown_protocol_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProtocol, match=r"'modbus'; known protocols: '8a80', 'kerong'"):
        protocol_named("modbus")


def test_a_registered_protocol_is_found_and_drives_a_serial_bank(
    extra_protocol: BoardProtocol,
) -> None:
    assert protocol_named("test-board") is extra_protocol
    assert "test-board" in known_protocols()
    config = parse_door_bank_config(
        {"backend": "serial", "serial": {**SERIAL, "protocol": "test-board"}}
    )
    assert config.serial is not None
    assert config.serial.protocol is extra_protocol
    assert config.serial.effective_baudrate == 4800
    assert isinstance(create_door_bank(config), SerialBoardBank)


def test_a_protocol_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="'kerong' is already registered"):
        register_protocol(
            BoardProtocol(
                name="kerong",
                title="Other",
                baudrate=9600,
                first_board=0,
                last_board=1,
                max_locks=1,
                validate_address=kerong.validate_address,
                request_frame=kerong.REQUEST_FRAME,
                dialect=kerong.PROTOCOL.dialect,
            )
        )


def test_an_unknown_protocol_in_the_doors_table_is_a_configuration_error() -> None:
    with pytest.raises(
        HardwareConfigError,
        match=r"doors\.serial\.protocol: 'kerong2' is not one of the known protocols: "
        r"'8a80', 'kerong'",
    ):
        parse_door_bank_config({"backend": "serial", "serial": {**SERIAL, "protocol": "kerong2"}})


def test_an_unknown_backend_is_a_configuration_error_naming_the_known_ones() -> None:
    with pytest.raises(UnknownBackend, match=r"'can'; known backends: 'fake', 'gpio', 'serial'"):
        backend_named("can")
    with pytest.raises(
        HardwareConfigError,
        match=r"doors\.backend: 'gpoi' is not one of the known backends: 'fake', 'gpio', 'serial'",
    ):
        parse_door_bank_config({"backend": "gpoi"})


def test_a_registered_backend_is_found_and_its_table_is_a_known_key() -> None:
    backend = register_backend(
        Backend(
            "bench",
            FakeTable,
            lambda settings, timing: FakeDoorBank(settings.doors, timing),
            lambda settings: tuple(range(1, settings.doors + 1)),
        )
    )
    try:
        assert backend_named("bench") is backend
        assert "bench" in known_backends()
        config = parse_door_bank_config({"backend": "bench", "bench": {"doors": 3}})
        assert config.backend is backend
        assert config.doors == (1, 2, 3)
        bank = create_door_bank(config)
        assert isinstance(bank, FakeDoorBank)
        assert bank.doors == (1, 2, 3)
        with pytest.raises(HardwareConfigError, match=r"doors\.bench is required"):
            parse_door_bank_config({"backend": "bench"})
    finally:
        unregister_backend("bench")
    assert "bench" not in known_backends()


def test_the_fake_backend_is_chosen_only_by_name() -> None:
    config = parse_door_bank_config({"backend": "fake"})
    assert config.backend is Backend.FAKE
    assert config.timing == UnlockTiming()
    assert config.doors == tuple(range(1, 13)), "the fake bank's own default, when it is named"
    assert config.serial is None
    assert config.gpio is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"backend": 3}, r"doors\.backend: wrong type int"),
        ({"backend": "fake", "fake": 7}, r"doors\.fake: expected a table, got int"),
        ({"backend": "fake", "fake": {"doors": 0}}, r"doors\.fake\.doors: must be at least 1"),
        (
            {"backend": "serial", "serial": {**SERIAL, "protocol": "8a80", "boards": [{}]}},
            r"doors\.serial\.boards\[0\]\.address is required",
        ),
        (
            {"backend": "serial", "serial": {**SERIAL, "protocol": 5}},
            r"doors\.serial\.protocol: wrong type int",
        ),
        (
            {"backend": "gpio", "gpio": {"pins": {"x": {"solenoid": 1, "sensor": 2}}}},
            r"doors\.gpio\.pins: door numbers are integers, got 'x'",
        ),
        (
            {"backend": "gpio", "gpio": {"pins": {"1": {"solenoid": 1, "sensor": 1}}}},
            r"doors\.gpio\.pins\.1: solenoid and sensor cannot share pin 1",
        ),
        (
            {"backend": "serial", "serial": {"port": "/x", "protocol": "8a80", "map": {"1": 2}}},
            r"doors\.serial\.map\.1: expected \[board, lock\], got 2",
        ),
    ],
)
def test_hardware_config_errors_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(HardwareConfigError, match=message):
        parse_door_bank_config(table)


def test_importing_the_kiosk_loads_no_hardware_library() -> None:
    code = (
        "import sys, kiosk, kiosk.hardware, kiosk.config, kiosk.daemon\n"
        "from kiosk.hardware.protocols import known_protocols\n"
        "known_protocols()\n"
        "print(sorted(m for m in ('serial', 'gpiozero') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
