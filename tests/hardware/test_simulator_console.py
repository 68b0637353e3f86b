"""The field tech's console for the lock-board simulator."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from hardware_sim.console import build_parser, run_commands
from hardware_sim.lock_board import LockBoardSimulator
from kiosk.hardware.protocols import BoardProtocol


@pytest.fixture
def sim() -> Iterator[LockBoardSimulator]:
    with LockBoardSimulator(BoardProtocol.KERONG, {0: 4}, spring_delay_s=0) as simulated:
        yield simulated


def _run(sim: LockBoardSimulator, *lines: str) -> str:
    out = io.StringIO()
    run_commands(sim, [f"{line}\n" for line in lines], out)
    return out.getvalue()


def test_commands_drive_the_faults(sim: LockBoardSimulator) -> None:
    _run(sim, "jam 0 1", "kill 0 2", "stick 0 3 open", "open 0 4", "parcel 0 4", "mute 0")

    assert sim.door(0, 3).sensor_reads_open()
    assert sim.door(0, 4).is_open
    assert sim.door(0, 4).occupied
    sim.door(0, 1).pulse()
    sim.door(0, 2).pulse()
    assert not sim.door(0, 1).is_open
    assert not sim.door(0, 2).is_open


def test_power_off_and_status(sim: LockBoardSimulator) -> None:
    output = _run(sim, "power 0 off", "status", "quit", "power 0 on")

    assert "board 0 (NO POWER)" in output
    assert not sim.board(0).powered


def test_bad_commands_say_what_is_wrong(sim: LockBoardSimulator) -> None:
    output = _run(sim, "wiggle 0 1", "jam", "jam 7 1", "corrupt 0 lots")

    assert "unknown command 'wiggle'" in output
    assert "jam needs a board address" in output
    assert "no simulated board at address 7" in output
    assert "invalid literal" in output


def test_board_option_reads_address_and_lock_count() -> None:
    args = build_parser().parse_args(["lock-board", "--board", "2:8", "--board", "3"])
    assert args.board == [(2, 8), (3, 16)]
