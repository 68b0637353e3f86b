"""Finding frames in a byte stream: split arrivals, noise, corrupted candidates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kiosk.hardware import ChecksumError
from kiosk.hardware.protocols import eight_a, kerong
from kiosk.hardware.protocols.eight_a import LockReply
from kiosk.hardware.protocols.framing import FrameReader

lock_replies = st.builds(
    LockReply, st.integers(1, 32), st.integers(0, 50), st.booleans(), st.just(0x8A)
)
# Noise without head bytes, so it can never be mistaken for (part of) a frame.
noise = st.binary(max_size=12).map(lambda b: bytes(x for x in b if x not in eight_a.HEADS))


def test_a_frame_arriving_in_pieces_is_returned_once_complete() -> None:
    reader = FrameReader(kerong.STATUS_REPLY_FRAME)
    frame = kerong.StatusReply(1, 0xFFFF, 0).encode()

    assert reader.feed(frame[:4]) == []
    assert reader.pending == frame[:4]
    assert reader.feed(frame[4:]) == [kerong.decode_status_reply(frame)]


def test_noise_before_a_frame_is_discarded() -> None:
    reader = FrameReader(eight_a.LOCK_REPLY_FRAME)
    frame = LockReply(1, 1, True).encode()

    assert reader.feed(b"\x00\xff\x13" + frame) == [LockReply(1, 1, True)]
    assert reader.discarded == 3


def test_a_stray_head_byte_just_before_a_frame_does_not_hide_it() -> None:
    # 8A | 8A 01 01 00 8A: the first five bytes even pass the XOR check (8A^8A = 0), so only
    # the field check rejects them; the reader must then find the real frame one byte later.
    reader = FrameReader(eight_a.LOCK_REPLY_FRAME)

    assert reader.feed(bytes.fromhex("8A 8A 01 01 00 8A")) == [LockReply(1, 1, True)]
    assert reader.rejected == 1


def test_a_corrupted_frame_is_counted_and_the_next_good_one_returned() -> None:
    reader = FrameReader(eight_a.LOCK_REPLY_FRAME)
    bad = bytes.fromhex("8A 01 01 00 8B")
    good = LockReply(1, 2, False).encode()

    assert reader.feed(bad + good) == [LockReply(1, 2, False)]
    assert reader.rejected == 1
    assert isinstance(reader.last_error, ChecksumError)


@given(st.lists(st.tuples(noise, lock_replies), max_size=6), noise, st.data())
def test_frames_between_noise_are_found_however_the_stream_is_split(
    parts: list[tuple[bytes, LockReply]], tail: bytes, data: st.DataObject
) -> None:
    stream = b"".join(junk + reply.encode() for junk, reply in parts) + tail
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    reader = FrameReader(eight_a.LOCK_REPLY_FRAME)

    found = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        found += reader.feed(stream[start:end])

    assert found == [reply for _, reply in parts]
