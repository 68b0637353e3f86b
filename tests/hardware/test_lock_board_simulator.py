"""The lock-board simulator at the byte level: a plain serial client on its pseudo-terminal
sends the design brief's frames and checks the bytes that come back, and each fault knob."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import serial

from hardware_sim.doors import SimulatedDoor
from hardware_sim.lock_board import LockBoardSimulator
from kiosk.hardware.protocols import BoardProtocol, eight_a, kerong
from kiosk.hardware.protocols.kerong import LockBitPolarity


@pytest.fixture
def eight_a_sim() -> Iterator[LockBoardSimulator]:
    with LockBoardSimulator(BoardProtocol.EIGHT_A, {1: 8, 2: 8}, spring_delay_s=0) as sim:
        yield sim


@pytest.fixture
def kerong_sim() -> Iterator[LockBoardSimulator]:
    with LockBoardSimulator(BoardProtocol.KERONG, {0: 16, 1: 16}, spring_delay_s=0) as sim:
        yield sim


@pytest.fixture
def port(request: pytest.FixtureRequest) -> Iterator[serial.Serial]:
    sim: LockBoardSimulator = request.getfixturevalue(request.param)
    with serial.Serial(sim.path, timeout=0.1) as handle:
        yield handle


def _ask(port: serial.Serial, frame: str, reply_length: int) -> bytes:
    port.reset_input_buffer()
    port.write(bytes.fromhex(frame))
    return bytes(port.read(reply_length))


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_eight_a_open_vector_opens_the_door_and_is_answered(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    reply = _ask(port, "8A 01 01 11 9B", 5)

    assert eight_a.decode_lock_reply(reply) == eight_a.LockReply(1, 1, True, eight_a.HEAD_OPEN)
    assert eight_a_sim.door(1, 1).is_open
    assert not eight_a_sim.door(2, 1).is_open


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_eight_a_query_all_vector_gets_a_seven_byte_reply(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    eight_a_sim.door(1, 3).force_open()

    reply = _ask(port, "80 01 00 33 B2", 7)

    assert reply[:2] == bytes.fromhex("80 01")
    assert reply[5] == 0x33
    assert eight_a.decode_board_reply(reply).open_locks == {3}


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_eight_a_open_all_vector_opens_every_lock_silently(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    assert _ask(port, "8A 01 00 11 9A", 5) == b""
    assert all(door.is_open for door in eight_a_sim.board(1).doors.values())


@pytest.mark.parametrize("port", ["kerong_sim"], indirect=True)
def test_kerong_unlock_vector_opens_the_door_and_status_reports_it(
    kerong_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    _ask(port, "02 12 31 03 48", 9)  # board 1 lock 3
    kerong_sim.door(1, 5).set_occupied()

    status = kerong.decode_status_reply(_ask(port, "02 10 30 03 45", 9))

    assert status.board == 1
    polarity = LockBitPolarity.SET_MEANS_LOCKED
    assert [n for n in range(1, 17) if status.is_open(n, polarity)] == [3]
    assert [n for n in range(1, 17) if status.occupied(n)] == [5]


@pytest.mark.parametrize("port", ["kerong_sim"], indirect=True)
def test_kerong_lock_16_vector_reaches_the_last_channel(
    kerong_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    _ask(port, "02 0F 31 03 45", 9)
    assert kerong_sim.door(0, 16).is_open


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_requests_for_absent_boards_and_channels_get_no_answer(port: serial.Serial) -> None:
    assert _ask(port, eight_a.encode_query(9, 1).hex(), 5) == b""
    assert _ask(port, eight_a.encode_query(1, 9).hex(), 5) == b""


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_unpowered_board_hears_nothing_and_pulses_nothing(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    eight_a_sim.board(1).power_off()

    assert _ask(port, "8A 01 01 11 9B", 5) == b""
    assert eight_a_sim.door(1, 1).pulses == 0
    assert len(eight_a_sim.requests()) == 1, "the frame was on the wire all the same"

    eight_a_sim.board(1).power_on()
    assert eight_a.decode_lock_reply(_ask(port, "80 01 01 33 B3", 5)).is_open is False


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_muted_board_acts_without_answering(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    eight_a_sim.board(1).mute()

    assert _ask(port, "8A 01 01 11 9B", 5) == b""
    assert eight_a_sim.door(1, 1).is_open


@pytest.mark.parametrize("port", ["kerong_sim"], indirect=True)
def test_corrupted_replies_have_a_wrong_sum_for_the_next_n(
    kerong_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    kerong_sim.board(0).corrupt_replies(next_n=1)

    first = _ask(port, "02 00 30 03 35", 9)
    second = _ask(port, "02 00 30 03 35", 9)

    assert kerong.checksum(first[:-1]) != first[-1]
    assert kerong.checksum(second[:-1]) == second[-1]


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_noise_between_requests_is_resynchronised(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    reply = _ask(port, "FF 8A 00 13 " + "80 01 01 33 B3", 5)

    assert eight_a.decode_lock_reply(reply) == eight_a.LockReply(1, 1, False, eight_a.HEAD_QUERY)
    assert eight_a_sim.rejected_requests == 1


@pytest.mark.parametrize("port", ["eight_a_sim"], indirect=True)
def test_slow_board_answers_after_its_delay(
    eight_a_sim: LockBoardSimulator, port: serial.Serial
) -> None:
    eight_a_sim.board(1).reply_delay_s = 0.05
    started = time.monotonic()

    assert len(_ask(port, "80 01 01 33 B3", 5)) == 5
    assert time.monotonic() - started >= 0.05


def test_stop_is_clean_and_idempotent() -> None:
    sim = LockBoardSimulator(BoardProtocol.KERONG, {0: 16})
    sim.start()
    sim.stop()
    sim.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        sim.start()


@pytest.mark.parametrize(
    ("protocol", "boards", "message"),
    [
        (BoardProtocol.EIGHT_A, {0: 8}, "board address must be 1-32"),
        (BoardProtocol.EIGHT_A, {1: 51}, "board 1 with 51 locks"),
        (BoardProtocol.KERONG, {16: 16}, "board number must be 0-15"),
        (BoardProtocol.KERONG, {0: 17}, "lock number must be 1-16"),
    ],
)
def test_boards_the_protocol_cannot_have_are_refused(
    protocol: BoardProtocol, boards: dict[int, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LockBoardSimulator(protocol, boards)


def test_door_springs_open_after_its_delay_and_stays_open_until_closed() -> None:
    now = [0.0]
    door = SimulatedDoor(spring_delay_s=0.2, clock=lambda: now[0])

    door.pulse()
    assert not door.is_open
    now[0] = 0.2
    assert door.is_open
    assert door.sensor_reads_open()
    now[0] = 10.0
    assert door.is_open
    door.close()
    assert not door.is_open


def test_stuck_sensor_reads_its_value_whatever_the_door_does() -> None:
    door = SimulatedDoor()
    door.stick_sensor(reads_open=True)
    assert door.sensor_reads_open()
    assert not door.is_open
    door.stick_sensor(None)
    assert not door.sensor_reads_open()
