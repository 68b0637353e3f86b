"""The door-bank contract, run over every backend: fake, GPIO on MockFactory, and the serial
backend against the lock-board simulator over a real pseudo-terminal (8A/80 and Kerong)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from door_rigs import DOORS, TIMING, BusRig, DoorRig, SerialRig

from kiosk.hardware import (
    BoardTimeout,
    ChecksumError,
    DoorChange,
    DoorState,
    LockBoardError,
    LockState,
    UnknownDoor,
    UnlockOutcome,
)


async def _eventually(condition: Callable[[], bool], within_s: float = 1.0) -> bool:
    """Whether ``condition`` holds within ``within_s`` (simulated doors take a moment to spring)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _lock_states(states: dict[int, DoorState]) -> dict[int, LockState]:
    return {door: state.lock for door, state in states.items()}


async def _next_changes(changes: AsyncIterator[DoorChange], count: int) -> list[DoorChange]:
    async with asyncio.timeout(2.0):
        return [await anext(changes) for _ in range(count)]


async def test_bank_lists_its_doors_and_all_start_locked(rig: DoorRig) -> None:
    assert rig.bank.doors == tuple(range(1, DOORS + 1))
    states = await rig.bank.read_states()
    assert _lock_states(states) == dict.fromkeys(rig.bank.doors, LockState.LOCKED)


async def test_unlock_of_shut_door_reports_opened(rig: DoorRig) -> None:
    result = await rig.bank.unlock(3)

    assert result.door == 3
    assert result.outcome is UnlockOutcome.OPENED
    assert result.sensor_error is None
    assert rig.pulses(3) == 1
    assert rig.is_open(3)
    states = await rig.bank.read_states()
    assert states[3].is_open
    assert [door for door, state in states.items() if state.is_open] == [3]


async def test_unlock_of_doors_on_either_board_opens_only_that_door(rig: DoorRig) -> None:
    for door in (1, 8):
        assert (await rig.bank.unlock(door)).opened
    assert [door for door in rig.bank.doors if rig.is_open(door)] == [1, 8]


async def test_jammed_door_reports_open_not_detected_after_the_timeout(rig: DoorRig) -> None:
    rig.jam(5)

    result = await rig.bank.unlock(5)

    assert result.outcome is UnlockOutcome.OPEN_NOT_DETECTED
    assert result.elapsed_s >= TIMING.open_timeout_s
    assert rig.pulses(5) == 1
    assert not rig.is_open(5)


async def test_dead_solenoid_reports_open_not_detected(rig: DoorRig) -> None:
    rig.kill_solenoid(2)

    result = await rig.bank.unlock(2)

    assert result.outcome is UnlockOutcome.OPEN_NOT_DETECTED
    assert rig.pulses(2) == 1


async def test_pulse_is_sent_even_when_the_sensor_already_reads_open(rig: DoorRig) -> None:
    rig.stick_sensor(4, reads_open=True)
    assert (await rig.bank.read_states())[4].is_open

    result = await rig.bank.unlock(4)

    assert rig.pulses(4) == 1
    assert result.outcome is UnlockOutcome.OPENED
    assert await _eventually(lambda: rig.is_open(4)), "the pulse must reach the shut door"


async def test_sensor_stuck_shut_reports_open_not_detected_though_the_door_opened(
    rig: DoorRig,
) -> None:
    rig.stick_sensor(6, reads_open=False)

    result = await rig.bank.unlock(6)

    assert result.outcome is UnlockOutcome.OPEN_NOT_DETECTED
    assert await _eventually(lambda: rig.is_open(6))


async def test_unlock_of_an_unknown_door_is_refused_before_any_pulse(rig: DoorRig) -> None:
    with pytest.raises(UnknownDoor, match="door 99"):
        await rig.bank.unlock(99)
    assert sum(rig.pulses(door) for door in rig.bank.doors) == 0


async def test_read_states_sees_doors_opened_and_closed_by_hand(rig: DoorRig) -> None:
    rig.open_by_hand(7)
    assert (await rig.bank.read_states())[7].is_open
    rig.close(7)
    assert not (await rig.bank.read_states())[7].is_open


async def test_occupancy_is_reported_only_where_the_hardware_senses_it(rig: DoorRig) -> None:
    rig.set_occupied(1)

    states = await rig.bank.read_states()

    if rig.has_occupancy:
        assert states[1].occupied is True
        assert {states[door].occupied for door in rig.bank.doors if door != 1} == {False}
    else:
        assert {state.occupied for state in states.values()} == {None}


async def test_watch_yields_each_change_and_nothing_else(rig: DoorRig) -> None:
    changes = rig.bank.watch(0.02)
    try:
        first_poll = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.1)  # several polls with nothing to report
        assert not first_poll.done()

        rig.open_by_hand(2)
        change = await asyncio.wait_for(first_poll, 2.0)
        assert (change.door, change.before.lock, change.after.lock) == (
            2,
            LockState.LOCKED,
            LockState.OPEN,
        )

        rig.close(2)
        rig.open_by_hand(8)
        later = await _next_changes(changes, 2)
        assert {(c.door, c.before.lock, c.after.lock) for c in later} == {
            (2, LockState.OPEN, LockState.LOCKED),
            (8, LockState.LOCKED, LockState.OPEN),
        }
    finally:
        await changes.aclose()


async def test_watch_reports_a_change_since_the_callers_baseline(rig: DoorRig) -> None:
    baseline = await rig.bank.read_states()
    rig.open_by_hand(3)

    changes = rig.bank.watch(0.02, baseline=baseline)
    try:
        [change] = await _next_changes(changes, 1)
    finally:
        await changes.aclose()

    assert (change.door, change.after.lock) == (3, LockState.OPEN)


async def test_watch_polls_at_least_every_half_second(rig: DoorRig) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        await anext(rig.bank.watch(0.6))


async def test_silent_board_raises_board_timeout_after_retries(bus_rig: BusRig) -> None:
    bus_rig.go_silent()

    started = time.monotonic()
    with pytest.raises(BoardTimeout):
        await bus_rig.bank.unlock(1)
    with pytest.raises(BoardTimeout):
        await bus_rig.bank.read_states()
    assert time.monotonic() - started < 2.0
    assert not bus_rig.is_open(1)


async def test_bank_recovers_when_the_board_answers_again(bus_rig: BusRig) -> None:
    bus_rig.go_silent()
    with pytest.raises(LockBoardError):
        await bus_rig.bank.read_states()

    bus_rig.come_back()

    assert (await bus_rig.bank.unlock(1)).opened


async def test_watch_ends_with_the_error_when_the_board_goes_silent(bus_rig: BusRig) -> None:
    changes = bus_rig.bank.watch(0.02)
    first = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.05)
    bus_rig.go_silent()
    with pytest.raises(BoardTimeout):
        await asyncio.wait_for(first, 2.0)
    await changes.aclose()


async def test_a_corrupted_reply_is_retried(serial_rig: SerialRig) -> None:
    serial_rig.corrupt_replies(next_n=1)

    assert (await serial_rig.bank.unlock(2)).opened
    serial_rig.corrupt_replies(next_n=1)
    assert (await serial_rig.bank.read_states())[2].is_open


async def test_replies_that_are_always_corrupted_raise_checksum_error(
    serial_rig: SerialRig,
) -> None:
    serial_rig.corrupt_replies(always=True)

    with pytest.raises(ChecksumError):
        await serial_rig.bank.read_states()
