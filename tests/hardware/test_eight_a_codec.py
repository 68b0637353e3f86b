"""The 8A/80 codec against every byte vector of the design brief, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.hardware import ChecksumError, LockBoardError, MalformedFrame
from kiosk.hardware.protocols import eight_a
from kiosk.hardware.protocols.eight_a import BoardReply, Function, LockReply, Request

boards = st.integers(eight_a.MIN_BOARD, eight_a.MAX_BOARD)
locks = st.integers(eight_a.ALL_LOCKS, eight_a.MAX_LOCK)
heads = st.sampled_from([eight_a.HEAD_OPEN, eight_a.HEAD_QUERY])
requests = st.builds(Request, st.sampled_from(Function), boards, locks)
lock_replies = st.builds(LockReply, boards, locks, st.booleans(), heads)
board_replies = st.builds(
    BoardReply, boards, st.frozensets(st.integers(1, eight_a.QUERY_ALL_LOCKS)), heads
)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (eight_a.encode_open(1, 1), "8A 01 01 11 9B"),
        (eight_a.encode_open(1, 0), "8A 01 00 11 9A"),
        (eight_a.encode_open(2, 5), "8A 02 05 11 9C"),
        (eight_a.encode_query(1, 1), "80 01 01 33 B3"),
        (eight_a.encode_query(1), "80 01 00 33 B2"),
    ],
    ids=["open-1-1", "open-all-1", "open-2-5", "query-1-1", "query-all-1"],
)
def test_requests_match_the_design_vectors(encoded: bytes, expected: str) -> None:
    assert encoded == bytes.fromhex(expected)


def test_single_reply_vector_reads_lock_open() -> None:
    reply = eight_a.decode_lock_reply(bytes.fromhex("8A 01 01 00 8A"))
    assert reply == LockReply(board=1, lock=1, is_open=True, head=0x8A)


@pytest.mark.parametrize("head", [0x8A, 0x80])
def test_single_reply_may_start_with_either_head(head: int) -> None:
    closed = bytes((head, 0x02, 0x07, 0x11))
    frame = closed + bytes((eight_a.bcc(closed),))
    assert eight_a.decode_lock_reply(frame) == LockReply(2, 7, is_open=False, head=head)


def test_query_all_reply_is_highest_group_first_with_set_bits_closed() -> None:
    # S17-24 = FF (all closed), S9-16 = FE (lock 9 open), S1-8 = 7E (locks 1 and 8 open).
    body = bytes.fromhex("80 01 FF FE 7E 33")
    reply = eight_a.decode_board_reply(body + bytes((eight_a.bcc(body),)))

    assert reply.board == 1
    assert reply.open_locks == {1, 8, 9}
    assert reply.is_open(9)
    assert not reply.is_open(24)


def test_query_all_reply_encodes_to_seven_bytes_ending_33_bcc() -> None:
    frame = BoardReply(3, frozenset({24})).encode()
    assert frame == bytes.fromhex("80 03 7F FF FF 33") + bytes((eight_a.bcc(frame[:-1]),))


def test_board_reply_does_not_answer_for_locks_above_24() -> None:
    with pytest.raises(ValueError, match="1-24"):
        BoardReply(1, frozenset()).is_open(25)


@pytest.mark.parametrize(
    ("board", "lock", "message"),
    [(0, 1, "board address must be 1-32"), (33, 1, "1-32"), (1, 51, "lock number must be 0-50")],
)
def test_addresses_out_of_range_are_refused(board: int, lock: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eight_a.encode_open(board, lock)


def test_boolean_is_not_a_board_address() -> None:
    with pytest.raises(ValueError, match="board address"):
        eight_a.encode_query(True, 1)


def test_bad_bcc_raises_checksum_error_carrying_the_frame() -> None:
    frame = bytes.fromhex("8A 01 01 00 8B")
    with pytest.raises(ChecksumError, match="expected 8A") as caught:
        eight_a.decode_lock_reply(frame)
    assert caught.value.frame == frame


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("8A 01 01 00", "has 5 bytes"),
        ("7F 01 01 00 7F", "starts with 8A or 80"),
        ("8A 01 01 22 A8", "status must be 00 or 11"),
        ("8A 21 01 00 AA", "board address must be 1-32"),
    ],
)
def test_malformed_lock_replies_are_refused(frame: str, message: str) -> None:
    with pytest.raises(MalformedFrame, match=message):
        eight_a.decode_lock_reply(bytes.fromhex(frame))


def test_request_with_head_not_matching_its_function_is_malformed() -> None:
    body = bytes.fromhex("80 01 01 11")
    with pytest.raises(MalformedFrame, match="does not go with"):
        eight_a.decode_request(body + bytes((eight_a.bcc(body),)))


def test_query_all_reply_without_33_is_malformed() -> None:
    body = bytes.fromhex("80 01 FF FF FF 34")
    with pytest.raises(MalformedFrame, match="33"):
        eight_a.decode_board_reply(body + bytes((eight_a.bcc(body),)))


@given(requests)
def test_requests_round_trip(request: Request) -> None:
    assert eight_a.decode_request(request.encode()) == request


@given(lock_replies)
def test_lock_replies_round_trip(reply: LockReply) -> None:
    assert eight_a.decode_lock_reply(reply.encode()) == reply


@given(board_replies)
def test_board_replies_round_trip(reply: BoardReply) -> None:
    assert eight_a.decode_board_reply(reply.encode()) == reply


@given(lock_replies, st.data())
def test_any_change_to_one_byte_is_detected(reply: LockReply, data: st.DataObject) -> None:
    frame = bytearray(reply.encode())
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= data.draw(st.integers(1, 0xFF))
    with pytest.raises(LockBoardError):
        eight_a.decode_lock_reply(bytes(frame))
