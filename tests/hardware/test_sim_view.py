"""The field tech's simulator view (``locker-sim bank --view``), driven with Textual's Pilot.

Each action is checked on the simulator's own door and board objects; a door unlocked by the
kiosk's serial door bank over the pseudo-terminal must show as open; a scanned barcode must reach
the kiosk's scanner reader on the scanner's pseudo-terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from hardware_sim.bank import SimulatedBank
from hardware_sim.bank_layout import BankLayout, parse_size_mix
from hardware_sim.console import main
from hardware_sim.view import BankViewApp, make_app
from hardware_sim.view.door_grid import DoorGrid
from kiosk.hardware import UnlockOutcome, create_door_bank, parse_door_bank_config
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.scanner import SerialScanner

SIZE = (100, 35)
DEADLINE_S = 5.0


@pytest.fixture
def bank() -> Iterator[SimulatedBank]:
    """Eight doors on two 8A/80 boards (1: doors 1-4, 2: doors 5-8)."""
    layout = BankLayout.plan(
        BoardProtocol.EIGHT_A, sizes=parse_size_mix("small=4,medium=3,large=1"), locks_per_board=4
    )
    with SimulatedBank(layout, spring_delay_s=0) as simulated:
        yield simulated


def _app(bank: SimulatedBank) -> BankViewApp:
    return make_app(
        bank, port="/tmp/locker-doors", scanner_port="/tmp/locker-scanner", refresh_s=0.05
    )


async def _until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        assert loop.time() < deadline, f"not within {DEADLINE_S} s: {what}"
        await asyncio.sleep(0.02)


async def test_door_keys_act_on_the_selected_door(bank: SimulatedBank) -> None:
    app = _app(bank)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "down")  # door 6: board 2, lock 2
        assert app.query_one(DoorGrid).selected == 6
        door = bank.door(6)

        await pilot.press("o")
        assert door.is_open
        await pilot.press("c")
        assert not door.is_open
        await pilot.press("p")
        assert door.is_open
        assert door.pulses == 1
        await pilot.press("c", "j")
        assert door.jammed
        await pilot.press("j")
        assert not door.jammed
        await pilot.press("k")
        assert door.solenoid_dead
        await pilot.press("k")
        assert not door.solenoid_dead
        await pilot.press("s")
        assert door.stuck_sensor is True
        await pilot.press("s")
        assert door.stuck_sensor is False
        await pilot.press("s")
        assert door.stuck_sensor is None
        await pilot.press("i")
        assert door.occupied
        await pilot.press("i")
        assert not door.occupied
        assert not any(bank.door(n).snapshot() != bank.door(1).snapshot() for n in (1, 2, 3, 5))


async def test_board_keys_act_on_the_selected_doors_board(bank: SimulatedBank) -> None:
    app = _app(bank)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")  # door 8, on board 2
        board = bank.board(2)

        await pilot.press("w")
        assert not board.powered
        await pilot.press("w", "m")
        assert board.powered
        assert board.muted
        await pilot.press("m", "x")
        assert not board.muted
        assert board.corrupting
        await pilot.press("x")
        assert not board.corrupting
        assert bank.board(1).powered  # the other board is left alone
        assert "corrupt replies off" in str(app.query_one("#status").render())


async def test_doors_and_actions_work_with_the_mouse(bank: SimulatedBank) -> None:
    app = _app(bank)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#door-3")
        assert app.query_one(DoorGrid).selected == 3
        await pilot.click("#action-jam")
        await pilot.click("#action-parcel")
        await pilot.click("#action-power")

        assert bank.door(3).jammed
        assert bank.door(3).occupied
        assert not bank.board(1).powered
        assert bank.board(2).powered


async def test_tiles_show_faults_made_behind_the_views_back(bank: SimulatedBank) -> None:
    app = _app(bank)
    async with app.run_test(size=SIZE):
        tile = app.query_one("#door-4")
        bank.door(4).kill_solenoid()
        bank.board(1).power_off()

        await _until(lambda: tile.has_class("-faulty", "-unpowered"), "door 4 shown faulty")
        assert "DEAD" in str(tile.render())
        assert "OFF" in str(tile.render())


async def test_a_door_unlocked_over_the_serial_bus_shows_as_open(bank: SimulatedBank) -> None:
    config = parse_door_bank_config(bank.layout.kiosk_config(bank.port, bank.scanner_port)["doors"])
    doors = create_door_bank(config)
    app = _app(bank)
    try:
        async with app.run_test(size=SIZE):
            tile = app.query_one("#door-7")
            assert not tile.has_class("-open")

            result = await doors.unlock(7)

            assert result.outcome is UnlockOutcome.OPENED
            await _until(lambda: tile.has_class("-open"), "door 7 shown open")
            assert "OPEN" in str(tile.render())
    finally:
        await doors.aclose()


async def test_a_barcode_typed_in_the_view_reaches_the_kiosks_scanner_reader(
    bank: SimulatedBank,
) -> None:
    codes = SerialScanner(bank.scanner_port, read_slice_s=0.02).codes()
    received = asyncio.ensure_future(anext(codes))
    app = _app(bank)
    try:
        async with app.run_test(size=SIZE) as pilot:
            # The reader drops what was waiting when it opened the port (as pyserial does), so
            # scan until it has heard one.
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while not received.done():
                assert asyncio.get_running_loop().time() < deadline, "no code arrived"
                await pilot.press("slash", *"JJD0001234567", "enter")
                assert app.query_one("#scan").value == ""  # type: ignore[attr-defined]
                await asyncio.wait({received}, timeout=0.2)

            assert received.result() == "JJD0001234567"
            assert "scanned 'JJD0001234567'" in str(app.query_one("#status").render())
    finally:
        received.cancel()
        await codes.aclose()


def test_view_and_no_input_are_refused_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["bank", "--doors", "2", "--view", "--no-input"])

    assert stopped.value.code == 2
    assert "--view and --no-input exclude each other" in capsys.readouterr().err


def test_the_grid_shows_each_doors_state_and_faults(snap_compare: Callable[..., bool]) -> None:
    layout = BankLayout.plan(
        BoardProtocol.KERONG, sizes=parse_size_mix("small=6,medium=4,large=2"), locks_per_board=6
    )
    with SimulatedBank(layout, spring_delay_s=0) as simulated:
        simulated.door(2).jam()
        simulated.door(3).force_open()
        simulated.door(3).set_occupied()
        simulated.door(5).stick_sensor(True)
        simulated.door(6).kill_solenoid()
        simulated.door(9).set_occupied()
        simulated.board(1).power_off()
        app = make_app(simulated, port="/tmp/locker-doors", scanner_port="/tmp/locker-scanner")

        async def select_door_3(pilot: object) -> None:
            await pilot.press("right", "right")  # type: ignore[attr-defined]

        assert snap_compare(app, terminal_size=SIZE, run_before=select_door_3)
