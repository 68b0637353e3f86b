"""The field tech's console commands, run in-process against a simulated bank."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import serial

from hardware_sim.bank import SimulatedBank
from hardware_sim.bank_commands import COMMANDS, BankCommands, CommandError, Quit
from hardware_sim.bank_layout import BankLayout, parse_size_mix
from kiosk.hardware.protocols import BoardProtocol


@pytest.fixture
def bank() -> Iterator[SimulatedBank]:
    layout = BankLayout.plan(
        BoardProtocol.KERONG, sizes=parse_size_mix("small=4,large=2"), locks_per_board=4
    )
    with SimulatedBank(layout, spring_delay_s=0) as simulated:
        yield simulated


@pytest.fixture
def commands(bank: SimulatedBank) -> BankCommands:
    return BankCommands(bank, "/tmp/doors", bank.scanner_port)


def test_door_commands_act_on_the_numbered_doors(
    bank: SimulatedBank, commands: BankCommands
) -> None:
    said = [
        commands.run(line)
        for line in ("jam 1", "kill-solenoid 2", "stick-sensor 3 open", "open 5", "put 5-6")
    ]

    assert said == [
        "door 1: jammed",
        "door 2: solenoid dead",
        "door 3: sensor stuck open",
        "door 5: opened by hand",
        "doors 5-6: occupied",
    ]
    assert bank.door(1).jammed
    assert bank.door(2).solenoid_dead
    assert bank.door(3).sensor_reads_open()
    assert not bank.door(3).is_open
    assert bank.door(5).is_open
    assert bank.door(6).occupied
    assert bank.bus.door(1, 1) is bank.door(5)  # door 5 is the first lock of the second board

    commands.run("repair all")
    commands.run("close 5")
    commands.run("take 5,6")
    snapshots = [bank.door(n).snapshot() for n in range(1, 7)]
    assert not any(s.jammed or s.solenoid_dead or s.stuck_sensor is not None for s in snapshots)
    assert not any(s.is_open or s.occupied for s in snapshots)


def test_unjam_and_kill_solenoid_off_undo_the_fault(
    bank: SimulatedBank, commands: BankCommands
) -> None:
    commands.run("jam 1,3")
    commands.run("kill-solenoid 2")
    assert commands.run("unjam 1,3") == "doors 1,3: no longer jammed"
    assert commands.run("kill-solenoid 2 off") == "door 2: solenoid working"
    assert [bank.door(n).jammed for n in (1, 3)] == [False, False]
    assert not bank.door(2).solenoid_dead


def test_a_pulse_springs_the_door_open_unless_jammed_dead_or_unpowered(
    bank: SimulatedBank, commands: BankCommands
) -> None:
    commands.run("jam 2")
    commands.run("kill-solenoid 3")
    assert commands.run("pulse 1-3") == "doors 1-3: pulsed"
    assert [bank.door(n).is_open for n in (1, 2, 3)] == [True, False, False]
    assert [bank.door(n).pulses for n in (1, 2, 3)] == [1, 1, 1]

    commands.run("power off 1")  # doors 5-6
    assert commands.run("pulse 4-6") == "doors 4-6: pulsed, except doors 5-6 (board off)"
    assert commands.run("pulse 5") == "door 5: not pulsed (board off)"
    assert [bank.door(n).is_open for n in (4, 5, 6)] == [True, False, False]

    assert commands.run("close all") == "doors 1-6: closed"
    assert not any(bank.door(n).is_open for n in range(1, 7))


def test_garbage_and_noise_go_on_the_bus(bank: SimulatedBank, commands: BankCommands) -> None:
    with serial.Serial(bank.port, timeout=10) as port:
        assert commands.run("garbage 8A 01 ff") == "3 byte(s) of garbage on the bus: 8a 01 ff"
        assert port.read(3) == bytes.fromhex("8A 01 FF")

        assert commands.run("noise AA BB") == "noise before every reply: aa bb"
        assert "bus: noise before every reply: aa bb" in (commands.run("boards") or "")
        assert json.loads(commands.run("doors json") or "")["bus_noise"] == "aa bb"
        port.write(bytes.fromhex("02 00 30 03 35"))  # Kerong status of board 0
        reply = port.read(2 + 9)
        assert reply[:3] == bytes.fromhex("AA BB 02")
        assert len(reply) == 11

        assert commands.run("noise off") == "noise off"
        port.write(bytes.fromhex("02 00 30 03 35"))
        assert port.read(1) == b"\x02"
    assert "noise" not in (commands.run("boards") or "")


def test_board_commands_act_on_one_board_or_all(
    bank: SimulatedBank, commands: BankCommands
) -> None:
    assert commands.run("power off 1") == "board 1: power off"
    assert commands.run("mute") == "boards 0, 1: muted (acting on requests, never answering)"
    assert commands.run("corrupt 2 0") == "board 0: the next 2 replies corrupt"
    commands.run("delay 0.5 0")

    assert [bank.board(n).powered for n in (0, 1)] == [True, False]
    assert [bank.board(n).muted for n in (0, 1)] == [True, True]
    assert [bank.board(n).corrupting for n in (0, 1)] == [True, False]
    assert bank.board(0).reply_delay_s == 0.5
    boards = commands.run("boards") or ""
    assert "board muted, corrupt replies, replies 0.5 s late" in boards
    assert "board off, board muted" in boards

    commands.run("power on")
    commands.run("unmute")
    commands.run("corrupt off")
    assert all(b.powered and not b.muted and not b.corrupting for b in bank.bus.boards.values())


def test_the_listing_shows_size_state_occupancy_jam_and_faults(
    bank: SimulatedBank, commands: BankCommands
) -> None:
    commands.run("jam 2")
    commands.run("open 5")
    commands.run("put 5")
    commands.run("stick-sensor 6 closed")
    commands.run("power off 1")

    rows = (commands.run("doors") or "").splitlines()

    assert rows[0].split() == [
        "door", "size", "board:lock", "state", "occupied", "jammed", "pulses", "faults"
    ]  # fmt: skip
    assert rows[2].split() == ["2", "small", "0:2", "locked", "no", "yes", "0", "-"]
    assert rows[5].split() == ["5", "large", "1:1", "open", "yes", "no", "0", "board", "off"]
    assert rows[6].split()[-5:] == ["sensor", "stuck", "closed,", "board", "off"]
    assert commands.run("list") == "\n".join(rows)


def test_the_json_listing_is_one_line_with_every_door(
    bank: SimulatedBank, commands: BankCommands
) -> None:
    commands.run("jam 2")
    bank.door(1).pulse()

    text = commands.run("doors json") or ""

    assert "\n" not in text
    listing = json.loads(text)
    assert listing["scanner_port"] == bank.scanner_port
    assert [d["door"] for d in listing["doors"]] == [1, 2, 3, 4, 5, 6]
    assert listing["doors"][0] | {"faults": []} == {
        "door": 1,
        "size": "small",
        "board": 0,
        "lock": 1,
        "state": "open",
        "sensor": "open",
        "occupied": False,
        "jammed": False,
        "solenoid_dead": False,
        "sensor_stuck": None,
        "pulses": 1,
        "faults": [],
    }
    assert listing["doors"][1]["jammed"] is True
    assert [b["address"] for b in listing["boards"]] == [0, 1]


def test_config_repeats_the_kiosk_configuration(commands: BankCommands) -> None:
    config = json.loads(commands.run("config json") or "")

    assert config["doors"]["serial"]["port"] == "/tmp/doors"
    assert config["sizes"] == {"1": "small", "2": "small", "3": "small", "4": "small"} | {
        "5": "large",
        "6": "large",
    }
    assert 'port = "/tmp/doors"' in (commands.run("config") or "")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("wiggle 3", "unknown command 'wiggle'; 'help' lists the commands"),
        ("jam", r"jam: expected 1 argument\(s\), got 0 \(usage: jam DOORS\)"),
        ("jam 7", "jam: no door 7; doors are 1-6"),
        ("jam 0-2", "jam: no door 0"),
        ("open 4-2", "runs backwards"),
        ("close three", "'three' is not a door number or range"),
        ("stick-sensor 1 sideways", "sticks 'open' or 'closed'"),
        ("kill-solenoid 1 maybe", "expected 'off' or nothing"),
        ("power dim", "expected 'on' or 'off'"),
        ("power off 9", "no simulated board at address 9"),
        ("mute 0 1", r"expected 0-1 argument\(s\), got 2"),
        ("corrupt lots", "expected 'on', 'off' or a number of replies"),
        ("corrupt 0", "at least 1"),
        ("delay soon", "'soon' is not a number of seconds"),
        ("delay 100", "0-60 seconds"),
        ("scan", "expected an ASCII code"),
        ("scan café", "expected an ASCII code"),
        ("doors all", "the only option is 'json'"),
        ("help wiggle", "no command 'wiggle'"),
        ("quit now", "expected 0 argument"),
        ("pulse", r"pulse: expected 1 argument\(s\), got 0"),
        ("pulse 9", "no door 9"),
        ("garbage", "expected at least one byte"),
        ("garbage 8A 0", "expected bytes in hex"),
        ("noise maybe", "expected bytes in hex"),
    ],
)
def test_bad_commands_get_one_clear_line(commands: BankCommands, line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        commands.run(line)
    assert "\n" not in str(caught.value)


def test_blank_lines_and_comments_do_nothing_and_quit_stops(commands: BankCommands) -> None:
    assert commands.run("   ") is None
    assert commands.run("# jam 1") is None
    with pytest.raises(Quit):
        commands.run("quit")
    with pytest.raises(Quit):
        commands.run("EXIT")


def test_help_lists_every_command(commands: BankCommands) -> None:
    text = commands.run("help") or ""

    for command in COMMANDS:
        assert f"\n  {command.name}" in text
    assert commands.run("help jam") == "jam DOORS: the door stays shut when pulsed"
