"""``locker-kiosk`` field tools against the lock-board simulator's pseudo-terminal (issue 11):
bus scan, raw reads, audited pulses, the door map, the diagnostics report, clearing a fault, and
the refusal while the daemon holds the port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardware_sim.lock_board import LockBoardSimulator
from kiosk.hardware.protocols import BoardProtocol
from kiosk.store import audit, doors
from shared.sizes import Size

from .helpers import open_store, write_config
from .test_cli import kiosk_cmd

LAYOUT = '"1-2" = "small"\n"3-4" = "large"'


def serial_doors(port: str) -> str:
    return (
        '[doors]\nbackend = "serial"\nopen_timeout_s = 1.0\npoll_interval_s = 0.02\n'
        f'[doors.serial]\nport = "{port}"\nprotocol = "8a80"\nrequest_timeout_s = 0.1\n'
        "boards = [{ address = 1, locks = 4 }]\n"
    )


@pytest.fixture
def sim() -> Iterator[LockBoardSimulator]:
    # Board 3 is on the bus but not in the configuration: the scan must say so.
    with LockBoardSimulator(BoardProtocol.EIGHT_A, {1: 4, 3: 8}, spring_delay_s=0.02) as made:
        yield made


@pytest.fixture
def config(tmp_path: Path, sim: LockBoardSimulator) -> Path:
    return write_config(tmp_path, doors=serial_doors(sim.path), layout=LAYOUT)


def test_bus_scan_lists_the_boards_that_answer(config: Path) -> None:
    result = kiosk_cmd("bus-scan", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answering"] == [1, 3]
    text = kiosk_cmd("bus-scan", "--config", str(config)).stdout
    assert "answering but not configured: board 3" in text


def test_read_doors_prints_every_lock_raw(config: Path, sim: LockBoardSimulator) -> None:
    sim.door(1, 2).force_open()
    result = kiosk_cmd("read-doors", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "door 1 (1:1): locked, -",
        "door 2 (1:2): open, -",
        "door 3 (1:3): locked, -",
        "door 4 (1:4): locked, -",
    ]


def test_each_pulse_is_audited_with_its_result(
    config: Path, sim: LockBoardSimulator, tmp_path: Path
) -> None:
    sim.door(1, 3).jam()
    result = kiosk_cmd(
        "pulse", "--config", str(config), "--each", "--by", "tech-ola", "--shut-timeout", "0.3"
    )
    assert result.returncode == 1  # one door did not open, and nobody shut the others
    assert result.stdout.splitlines() == [
        "door 1: opened, left open (0.3 s)",
        "door 2: opened, left open (0.3 s)",
        "door 3: open_not_detected",
        "door 4: opened, left open (0.3 s)",
    ]
    assert [sim.door(1, n).pulses for n in range(1, 5)] == [1, 1, 1, 1]
    with open_store(tmp_path / "kiosk.db") as store:
        entries = audit.entries(store.db, command="field_pulse")
        assert [(e.door, e.result, e.detail["by"]) for e in entries] == [
            (1, "opened, left open", "tech-ola"),
            (2, "opened, left open", "tech-ola"),
            (3, "open_not_detected", "tech-ola"),
            (4, "opened, left open", "tech-ola"),
        ]
        # The doors left open are recorded open: the next boot does not call them tampers.
        assert doors.get_door(store.db, 1).sensor_open is True


def test_pulse_each_waits_for_each_door_to_shut_before_the_next(
    config: Path, sim: LockBoardSimulator, tmp_path: Path
) -> None:
    # A tech at the bank: shuts each door a moment after it opens, and notes which doors had
    # been pulsed at that moment (the next one must not have been yet).
    seen: list[list[int]] = []

    def tech() -> None:
        for n in range(1, 5):
            deadline = time.monotonic() + 20
            while not sim.door(1, n).is_open and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            seen.append([sim.door(1, m).pulses for m in range(1, 5)])
            sim.door(1, n).close()

    worker = threading.Thread(target=tech, daemon=True)
    worker.start()
    result = kiosk_cmd("pulse", "--config", str(config), "--each", "--by", "tech-ola", "--json")
    worker.join(5)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["door"], r["result"]) for r in rows] == [(n, "opened, shut") for n in range(1, 5)]
    assert all(r["shut_after_s"] >= 0.2 for r in rows)
    assert seen == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def test_pulse_names_a_door_by_its_label(
    config: Path, sim: LockBoardSimulator, tmp_path: Path
) -> None:
    layout = {1: Size.SMALL, 2: Size.SMALL, 3: Size.LARGE, 4: Size.LARGE}
    with open_store(tmp_path / "kiosk.db") as store, store.transaction() as db:
        doors.sync_layout(db, layout, datetime.now(UTC))
        db.execute("UPDATE doors SET label = 'B2' WHERE number = 3")
    result = kiosk_cmd("pulse", "--config", str(config), "--door", "B2", "--by", "tech-ola")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["door 3 (B2): opened"]
    assert sim.door(1, 3).pulses == 1
    assert "door 3 (B2): board 1 lock 3" in kiosk_cmd("door-map", "--config", str(config)).stdout
    unknown = kiosk_cmd("pulse", "--config", str(config), "--door", "Z9", "--by", "tech-ola")
    assert unknown.returncode == 2
    assert "no door labelled 'Z9'" in unknown.stderr
    assert [sim.door(1, n).pulses for n in (1, 2, 4)] == [0, 0, 0]


def test_the_door_map_and_check_config_show_board_and_lock(config: Path, tmp_path: Path) -> None:
    result = kiosk_cmd("door-map", "--config", str(config))
    assert result.stdout.splitlines()[2] == "door 3: board 1 lock 3, large, lock"
    unstable = write_config(tmp_path, doors=serial_doors("/dev/ttyUSB0"), layout=LAYOUT)
    checked = kiosk_cmd("check-config", "--config", str(unstable))
    assert checked.returncode == 0, checked.stderr
    assert "/dev/serial/by-id/" in checked.stdout
    assert "  4: 1:4, large, lock" in checked.stdout


def test_the_diagnostics_report_holds_the_bus_the_doors_and_the_store(
    config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    result = kiosk_cmd("diagnostics", "--config", str(config), "--output", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["answering_boards"] == [1, 3]
    assert report["doors"]["1"] == {"board": 1, "lock": 1, "lock_state": "locked", "occupied": None}
    assert report["port_warning"] is None
    assert str(tmp_path / "kiosk.db") in report["store"]  # no store yet: the report says so


def test_clear_fault_is_audited(config: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from shared.sizes import Size

    with open_store(tmp_path / "kiosk.db") as store, store.transaction() as db:
        doors.sync_layout(db, dict.fromkeys(range(1, 5), Size.SMALL), datetime.now(UTC))
        doors.set_fault(db, 2, "opened without a command", datetime.now(UTC))
    result = kiosk_cmd("clear-fault", "--config", str(config), "--door", "2", "--by", "tech-ola")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "door 2: cleared (opened without a command)"
    with open_store(tmp_path / "kiosk.db") as store:
        assert doors.get_door(store.db, 2).fault is None
        [entry] = audit.entries(store.db, command="clear_fault")
        assert entry.detail["cleared_by"] == "tech-ola"


def test_every_field_command_refuses_while_the_daemon_holds_the_port(
    config: Path, sim: LockBoardSimulator
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as daemon:
        try:
            assert daemon.stdout is not None
            assert daemon.stdout.readline().startswith("ready:")
            for args in (
                ("bus-scan",),
                ("read-doors",),
                ("pulse", "--door", "1", "--by", "tech-ola"),
            ):
                result = kiosk_cmd(*args, "--config", str(config))
                assert result.returncode == 1, (args, result.stdout)
                assert "held by another program: stop the kiosk daemon" in result.stderr
            assert sim.door(1, 1).pulses == 0
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=30)
        finally:
            daemon.kill()


GPIO_DOORS = """[doors]
backend = "gpio"
open_timeout_s = 1.0
poll_interval_s = 0.02
[doors.gpio]
pulse_s = 0.01
[doors.gpio.pins]
1 = { solenoid = 4, sensor = 16 }
2 = { solenoid = 5, sensor = 17 }
"""


def test_read_doors_and_pulse_drive_a_gpio_bank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 11: the field tools drive GPIO banks too, here on gpiozero's MockFactory (in this
    # process: the mock pins live in it) with simulated spring-loaded doors on the pins.
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from hardware_sim.gpio_doors import SimulatedGpioDoors
    from kiosk import cli
    from kiosk.hardware.gpio_bank import GpioBankConfig, GpioDoorPins

    previous = Device.pin_factory
    Device.pin_factory = factory = MockFactory()
    try:
        pins = {1: GpioDoorPins(solenoid=4, sensor=16), 2: GpioDoorPins(solenoid=5, sensor=17)}
        sim_doors = SimulatedGpioDoors(factory, GpioBankConfig(pins, pulse_s=0.01))
        config = write_config(tmp_path, doors=GPIO_DOORS, layout='"1-2" = "small"')
        sim_doors.door(2).jam()
        assert cli.main(["read-doors", "--config", str(config)]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "door 1 (gpio4:gpio16): locked, -",
            "door 2 (gpio5:gpio17): locked, -",
        ]
        status = cli.main(
            [
                "pulse",
                "--config",
                str(config),
                "--each",
                "--by",
                "tech-ola",
                "--shut-timeout",
                "0.2",
            ]
        )
        assert status == 1
        assert capsys.readouterr().out.splitlines() == [
            "door 1: opened, left open (0.2 s)",
            "door 2: open_not_detected",
        ]
        assert [sim_doors.door(n).pulses for n in (1, 2)] == [1, 1]
        with open_store(tmp_path / "kiosk.db") as store:
            entries = audit.entries(store.db, command="field_pulse")
            assert [(e.door, e.result) for e in entries] == [
                (1, "opened, left open"),
                (2, "open_not_detected"),
            ]
    finally:
        Device.pin_factory.close()
        Device.pin_factory = previous
