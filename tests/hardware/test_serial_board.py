"""The RS-485 backend against the lock-board simulator over a real pseudo-terminal: what goes on
the wire, retries, stale and foreign replies, wide 8A/80 boards, Kerong variants, the bus lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from door_rigs import REQUEST_TIMEOUT_S, RETRIES, TIMING, SerialRig

from hardware_sim.lock_board import LockBoardSimulator
from kiosk.hardware import BoardTimeout, DoorMap, MalformedFrame, PortError, UnlockOutcome
from kiosk.hardware.protocols import BoardProtocol, eight_a, kerong
from kiosk.hardware.protocols.kerong import LockBitPolarity
from kiosk.hardware.serial_board import SerialBankConfig, SerialBoardBank


@pytest.fixture
async def eight_a_rig() -> AsyncIterator[SerialRig]:
    made = SerialRig(BoardProtocol.EIGHT_A)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def kerong_rig() -> AsyncIterator[SerialRig]:
    made = SerialRig(BoardProtocol.KERONG)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
def wide_board() -> Iterator[LockBoardSimulator]:
    with LockBoardSimulator(BoardProtocol.EIGHT_A, {7: 30}, spring_delay_s=0) as sim:
        yield sim


def _bank(sim: LockBoardSimulator, door_map: DoorMap, **options: object) -> SerialBoardBank:
    config = SerialBankConfig(
        port=str(options.pop("port", sim.path)),
        protocol=sim.protocol,
        door_map=door_map,
        request_timeout_s=REQUEST_TIMEOUT_S,
        retries=RETRIES,
        unlock_listen_s=0.01,
        **options,  # type: ignore[arg-type]
    )
    return SerialBoardBank(config, TIMING)


async def test_eight_a_unlock_sends_open_then_confirms_with_a_single_query(
    eight_a_rig: SerialRig,
) -> None:
    await eight_a_rig.bank.unlock(6)  # board 2, lock 2

    wire = [request.encode() for request in eight_a_rig.sim.requests()]
    assert wire[0] == eight_a.encode_open(2, 2)
    assert set(wire[1:]) == {eight_a.encode_query(2, 2)}


async def test_eight_a_read_states_sends_one_query_all_per_board(eight_a_rig: SerialRig) -> None:
    await eight_a_rig.bank.read_states()

    assert [r.encode() for r in eight_a_rig.sim.requests()] == [
        eight_a.encode_query(1),
        eight_a.encode_query(2),
    ]


async def test_kerong_unlock_sends_unlock_then_status_as_receipt(kerong_rig: SerialRig) -> None:
    await kerong_rig.bank.unlock(3)  # board 0, lock 3

    wire = [request.encode() for request in kerong_rig.sim.requests()]
    assert wire[:2] == [kerong.encode_unlock(0, 3), kerong.encode_status_query(0)]
    assert set(wire[2:]) <= {kerong.encode_status_query(0)}


async def test_silent_board_is_asked_once_plus_retries(serial_rig: SerialRig) -> None:
    serial_rig.go_silent()

    with pytest.raises(BoardTimeout, match="no reply to"):
        await serial_rig.bank.read_states()

    assert len(serial_rig.sim.requests()) == 1 + RETRIES


async def test_kerong_unlock_is_resent_with_each_status_retry(kerong_rig: SerialRig) -> None:
    kerong_rig.go_silent()

    with pytest.raises(BoardTimeout):
        await kerong_rig.bank.unlock(1)

    commands = [
        request.command
        for request in kerong_rig.sim.requests()
        if isinstance(request, kerong.Request)
    ]
    assert commands == [kerong.Command.UNLOCK, kerong.Command.STATUS] * (1 + RETRIES)


async def test_power_loss_leaves_doors_unchanged_until_power_returns(
    serial_rig: SerialRig,
) -> None:
    serial_rig.go_silent()
    with pytest.raises(BoardTimeout):
        await serial_rig.bank.unlock(2)
    assert serial_rig.pulses(2) == 0
    assert not serial_rig.is_open(2)

    serial_rig.come_back()

    assert not (await serial_rig.bank.read_states())[2].is_open
    assert (await serial_rig.bank.unlock(2)).opened


async def test_mute_board_acts_but_unlock_still_raises(serial_rig: SerialRig) -> None:
    # A board whose transmit line is broken: the door opens, but nothing confirms it. The
    # error is right (delivery is unconfirmed) and the door watch will see the door open.
    for board in serial_rig.sim.boards.values():
        board.mute()

    with pytest.raises(BoardTimeout):
        await serial_rig.bank.unlock(1)

    assert serial_rig.pulses(1) >= 1
    assert serial_rig.is_open(1)


async def test_noise_on_the_bus_before_replies_is_skipped(serial_rig: SerialRig) -> None:
    serial_rig.sim.noise_before_replies = bytes.fromhex("8A 80 02 FF 00 03 8A")

    assert (await serial_rig.bank.unlock(5)).opened
    assert (await serial_rig.bank.read_states())[5].is_open


async def test_a_reply_for_another_lock_does_not_answer_the_query(eight_a_rig: SerialRig) -> None:
    # A late answer about lock 1 lands just before the answer about lock 2.
    eight_a_rig.sim.noise_before_replies = eight_a.LockReply(1, 1, True).encode()

    assert (await eight_a_rig.bank.unlock(2)).outcome is UnlockOutcome.OPENED
    assert not eight_a_rig.is_open(1)


async def test_bytes_that_never_form_a_frame_raise_malformed_frame(
    eight_a_rig: SerialRig,
) -> None:
    eight_a_rig.go_silent()

    async def chatter() -> None:
        while True:
            eight_a_rig.sim.inject_garbage(b"\x01\x02\x03")
            await asyncio.sleep(0.005)

    noise = asyncio.create_task(chatter())
    try:
        with pytest.raises(MalformedFrame, match="bytes received"):
            await eight_a_rig.bank.read_states()
    finally:
        noise.cancel()


async def test_locks_above_24_on_an_eight_a_board_are_read_one_by_one(
    wide_board: LockBoardSimulator,
) -> None:
    door_map = DoorMap.sequential([(7, 30)])
    async with _bank(wide_board, door_map) as bank:
        wide_board.door(7, 27).force_open()
        wide_board.door(7, 3).force_open()

        states = await bank.read_states()

        assert [door for door, state in states.items() if state.is_open] == [3, 27]
        queried = [request.lock for request in wide_board.requests()]
        assert queried == [0, 25, 26, 27, 28, 29, 30]
        assert (await bank.unlock(30)).opened


@pytest.mark.parametrize("polarity", list(LockBitPolarity))
async def test_kerong_reads_doors_right_under_either_polarity(polarity: LockBitPolarity) -> None:
    with LockBoardSimulator(
        BoardProtocol.KERONG, {2: 16}, spring_delay_s=0, lock_bit_polarity=polarity
    ) as sim:
        async with _bank(sim, DoorMap.sequential([(2, 16)]), lock_bit_polarity=polarity) as bank:
            sim.door(2, 16).force_open()

            states = await bank.read_states()

            assert [door for door, state in states.items() if state.is_open] == [16]


async def test_kerong_with_the_wrong_polarity_reads_every_door_inverted() -> None:
    with LockBoardSimulator(
        BoardProtocol.KERONG, {0: 4}, lock_bit_polarity=LockBitPolarity.SET_MEANS_OPEN
    ) as sim:
        async with _bank(sim, DoorMap.sequential([(0, 4)])) as bank:
            states = await bank.read_states()
            assert all(state.is_open for state in states.values())


async def test_kerong_board_that_does_not_answer_unlocks_is_confirmed_by_status() -> None:
    with LockBoardSimulator(BoardProtocol.KERONG, {0: 4}, answers_unlock=False) as sim:
        async with _bank(sim, DoorMap.sequential([(0, 4)])) as bank:
            assert (await bank.unlock(4)).opened


async def test_concurrent_requests_never_interleave_on_the_bus(serial_rig: SerialRig) -> None:
    bank = serial_rig.bank
    unlocks, reads = await asyncio.gather(
        asyncio.gather(*(bank.unlock(door) for door in bank.doors)),
        asyncio.gather(*(bank.read_states() for _ in range(5))),
    )

    assert all(result.opened for result in unlocks)
    assert all(len(states) == len(bank.doors) for states in reads)
    assert serial_rig.sim.rejected_requests == 0


async def test_a_cancelled_request_leaves_the_bus_usable(serial_rig: SerialRig) -> None:
    for board in serial_rig.sim.boards.values():
        board.reply_delay_s = 0.03
    task = asyncio.create_task(serial_rig.bank.read_states())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for board in serial_rig.sim.boards.values():
        board.reply_delay_s = 0

    assert len(await serial_rig.bank.read_states()) == 8


async def test_a_missing_port_raises_port_error() -> None:
    config = SerialBankConfig(
        "/dev/does-not-exist-locker", BoardProtocol.EIGHT_A, DoorMap.sequential([(1, 2)])
    )
    async with SerialBoardBank(config, TIMING) as bank:
        with pytest.raises(PortError, match="does-not-exist"):
            await bank.read_states()


async def test_a_closed_bank_refuses_requests(eight_a_rig: SerialRig) -> None:
    await eight_a_rig.bank.aclose()
    with pytest.raises(PortError, match="closed"):
        await eight_a_rig.bank.read_states()


@pytest.mark.parametrize(
    ("protocol", "where", "message"),
    [
        (BoardProtocol.EIGHT_A, (0, 1), r"door 1 \(board 0 lock 1\): 8A/80 board address"),
        (BoardProtocol.EIGHT_A, (1, 51), "lock number must be 1-50"),
        (BoardProtocol.KERONG, (16, 1), "Kerong board number must be 0-15"),
        (BoardProtocol.KERONG, (0, 17), "Kerong lock number must be 1-16"),
    ],
)
def test_door_map_addresses_are_checked_against_the_protocol(
    protocol: BoardProtocol, where: tuple[int, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SerialBankConfig("/dev/ttyUSB0", protocol, DoorMap.of({1: where}))


@pytest.mark.parametrize(("protocol", "baudrate"), [("8a80", 9600), ("kerong", 19200)])
def test_baudrate_defaults_to_the_protocols(protocol: str, baudrate: int) -> None:
    config = SerialBankConfig(
        "/dev/ttyUSB0", BoardProtocol.parse(protocol), DoorMap.sequential([(1, 1)])
    )
    assert config.effective_baudrate == baudrate


async def test_a_port_that_goes_away_is_a_port_error_and_the_link_reopens_it(
    tmp_path: Path,
) -> None:
    # A pty whose other end closes fails like an unplugged USB adapter: pyserial's
    # reset_input_buffer raises termios.error (EIO), which is not an OSError.
    sim = LockBoardSimulator(BoardProtocol.EIGHT_A, {1: 4}, spring_delay_s=0)
    sim.start()
    # Through a stable link, as /dev/serial/by-id is, removed with the adapter: reopening the
    # freed /dev/pts number itself could open (and exclusively lock) another test process's
    # new pty, which then failed "Could not exclusively lock port".
    link = tmp_path / "usb-FTDI_RS485-if00-port0"
    link.symlink_to(sim.path)
    bank = _bank(sim, DoorMap.sequential([(1, 4)]), port=str(link))
    try:
        assert len(await bank.read_states()) == 4
        link.unlink()
        sim.stop()
        for _ in range(2):  # the failed handle is dropped; reopening fails as a PortError too
            with pytest.raises(PortError):
                await bank.read_states()
    finally:
        await bank.aclose()
        sim.stop()
