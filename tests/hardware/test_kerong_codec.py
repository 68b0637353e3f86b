"""The Kerong KR-CU16 codec against every byte vector of the design brief, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.hardware import ChecksumError, LockBoardError, MalformedFrame
from kiosk.hardware.protocols import kerong
from kiosk.hardware.protocols.kerong import Command, LockBitPolarity, Request, StatusReply

boards = st.integers(0, kerong.MAX_BOARD)
locks = st.integers(1, kerong.LOCKS_PER_BOARD)
sixteen_bits = st.integers(0, 0xFFFF)
requests = st.builds(Request, st.sampled_from(Command), boards, locks)
status_replies = st.builds(StatusReply, boards, sixteen_bits, sixteen_bits, st.integers(0, 15))


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (kerong.encode_unlock(0, 1), "02 00 31 03 36"),
        (kerong.encode_unlock(0, 16), "02 0F 31 03 45"),
        (kerong.encode_unlock(1, 3), "02 12 31 03 48"),
        (kerong.encode_status_query(0), "02 00 30 03 35"),
        (kerong.encode_status_query(1), "02 10 30 03 45"),
    ],
    ids=["unlock-0-1", "unlock-0-16", "unlock-1-3", "status-0", "status-1"],
)
def test_requests_match_the_design_vectors(encoded: bytes, expected: str) -> None:
    assert encoded == bytes.fromhex(expected)


def test_status_reply_layout_locks_then_ir_lowest_channel_first() -> None:
    # L1-8 = 01 (lock 1 bit set), L9-16 = 80 (lock 16), IR1-8 = 02 (sensor 2), IR9-16 = 00.
    body = bytes.fromhex("02 10 35 01 80 02 00 03")
    reply = kerong.decode_status_reply(body + bytes((kerong.checksum(body),)))

    assert (reply.board, reply.lock_bits, reply.ir_bits) == (1, 0x8001, 0x0002)
    assert reply.occupied(2)
    assert not reply.occupied(1)


@pytest.mark.parametrize(
    ("polarity", "open_locks"),
    [
        (LockBitPolarity.SET_MEANS_OPEN, {1, 16}),
        (LockBitPolarity.SET_MEANS_LOCKED, set(range(2, 16))),
    ],
)
def test_lock_bit_polarity_is_configuration(
    polarity: LockBitPolarity, open_locks: set[int]
) -> None:
    reply = StatusReply(board=0, lock_bits=0x8001)
    assert {n for n in range(1, 17) if reply.is_open(n, polarity)} == open_locks


@pytest.mark.parametrize("polarity", list(LockBitPolarity))
def test_from_states_reads_back_under_the_same_polarity(polarity: LockBitPolarity) -> None:
    reply = StatusReply.from_states(2, open_locks=[3, 9], occupied=[9], polarity=polarity)
    assert {n for n in range(1, 17) if reply.is_open(n, polarity)} == {3, 9}
    assert {n for n in range(1, 17) if reply.occupied(n)} == {9}


@pytest.mark.parametrize(
    ("board", "lock", "message"),
    [
        (16, 1, "board number must be 0-15"),
        (-1, 1, "0-15"),
        (0, 0, "lock number must be 1-16"),
        (0, 17, "1-16"),
    ],
)
def test_addresses_out_of_range_are_refused(board: int, lock: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kerong.encode_unlock(board, lock)


def test_bad_sum_raises_checksum_error() -> None:
    with pytest.raises(ChecksumError, match="expected 36"):
        kerong.decode_request(bytes.fromhex("02 00 31 03 37"))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("02 00 31 03", "has 5 bytes"),
        ("02 00 31 04 37", "framed by 02 ... 03"),
        ("02 00 32 03 37", "unknown Kerong command 32"),
    ],
)
def test_malformed_requests_are_refused(frame: str, message: str) -> None:
    with pytest.raises(MalformedFrame, match=message):
        kerong.decode_request(bytes.fromhex(frame))


def test_status_reply_with_another_code_is_malformed() -> None:
    body = bytes.fromhex("02 00 36 00 00 00 00 03")
    with pytest.raises(MalformedFrame, match="must be 35"):
        kerong.decode_status_reply(body + bytes((kerong.checksum(body),)))


def test_unknown_polarity_name_is_refused() -> None:
    with pytest.raises(ValueError, match="set_means_locked"):
        LockBitPolarity.parse("inverted")


@given(requests)
def test_requests_round_trip(request: Request) -> None:
    assert kerong.decode_request(request.encode()) == request


@given(status_replies)
def test_status_replies_round_trip(reply: StatusReply) -> None:
    assert kerong.decode_status_reply(reply.encode()) == reply


@given(status_replies, st.data())
def test_any_change_to_one_byte_is_detected(reply: StatusReply, data: st.DataObject) -> None:
    frame = bytearray(reply.encode())
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] = (frame[index] + data.draw(st.integers(1, 0xFF))) & 0xFF
    with pytest.raises(LockBoardError):
        kerong.decode_status_reply(bytes(frame))
