"""The "8A/80" lock-board protocol: a pure byte codec.

Common 2- to 50-channel boards, 9600 8N1, board address 1-32 by DIP switch. Every frame is
``HEAD BOARD LOCK FUNC BCC`` where BCC is the XOR of all preceding bytes:

- open a lock: ``8A BB LL 11 BCC`` (lock 0 opens every lock on the board);
- query a lock: ``80 BB LL 33 BCC`` (lock 0 queries the whole board);
- single reply: ``HH BB LL SS BCC`` with status ``00`` = open, ``11`` = closed;
- query-all reply: ``HH BB S17-24 S9-16 S1-8 33 BCC`` (7 bytes, highest group first; within a
  byte bit 0 is the group's lowest lock and a set bit means closed).

Replies may start with either head (``8A`` or ``80``), so decoders accept both. The query-all
reply covers locks 1-24 only; boards with more channels are read one lock at a time above 24.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from kiosk.hardware.door_bank import DoorState
from kiosk.hardware.door_map import LockAddress
from kiosk.hardware.errors import ChecksumError, MalformedFrame
from kiosk.hardware.protocols import BoardProtocol, register_protocol
from kiosk.hardware.protocols.dialect import BoardDialect
from kiosk.hardware.protocols.framing import FrameSpec

if TYPE_CHECKING:
    from kiosk.hardware.serial_board import SerialBankConfig
    from kiosk.hardware.serial_link import SerialLink

BAUDRATE = 9600
HEAD_OPEN = 0x8A
HEAD_QUERY = 0x80
HEADS = frozenset({HEAD_OPEN, HEAD_QUERY})
STATUS_OPEN = 0x00
STATUS_CLOSED = 0x11
ALL_LOCKS = 0
MIN_BOARD = 1
MAX_BOARD = 32
MAX_LOCK = 50
QUERY_ALL_LOCKS = 24
FRAME_LENGTH = 5
BOARD_REPLY_LENGTH = 7


class Function(IntEnum):
    """The FUNC byte of a request."""

    OPEN = 0x11
    QUERY = 0x33


_HEAD_FOR = {Function.OPEN: HEAD_OPEN, Function.QUERY: HEAD_QUERY}


def bcc(data: bytes) -> int:
    """The block check character: XOR of ``data``."""
    return functools.reduce(operator.xor, data, 0)


def validate_address(board: int, lock: int, *, allow_all: bool = False) -> None:
    """Checks a board address and lock number against what the protocol can carry.

    Args:
        board: The DIP-switch address, 1-32.
        lock: The channel, 1-50; 0 ("every lock") only when ``allow_all``.
        allow_all: Whether lock 0 is acceptable.

    Raises:
        ValueError: either number is out of range (or not an int).
    """
    if not _is_int(board) or not MIN_BOARD <= board <= MAX_BOARD:
        raise ValueError(f"8A/80 board address must be {MIN_BOARD}-{MAX_BOARD}, got {board!r}")
    low = ALL_LOCKS if allow_all else 1
    if not _is_int(lock) or not low <= lock <= MAX_LOCK:
        raise ValueError(f"8A/80 lock number must be {low}-{MAX_LOCK}, got {lock!r}")


@dataclass(frozen=True, slots=True)
class Request:
    """A request from the kiosk: open or query one lock, or every lock (``lock == 0``).

    Raises:
        ValueError: on construction, when the board or lock is out of range.
    """

    function: Function
    board: int
    lock: int

    def __post_init__(self) -> None:
        validate_address(self.board, self.lock, allow_all=True)

    def encode(self) -> bytes:
        return _seal(bytes((_HEAD_FOR[self.function], self.board, self.lock, self.function)))


def encode_open(board: int, lock: int) -> bytes:
    """The frame that opens ``lock`` on ``board`` (lock 0: every lock).

    Raises:
        ValueError: the board or lock is out of range.
    """
    return Request(Function.OPEN, board, lock).encode()


def encode_query(board: int, lock: int = ALL_LOCKS) -> bytes:
    """The frame that queries ``lock`` on ``board`` (lock 0: the whole board, locks 1-24).

    Raises:
        ValueError: the board or lock is out of range.
    """
    return Request(Function.QUERY, board, lock).encode()


def decode_request(frame: bytes) -> Request:
    """Reads a request frame (the simulator's side of the bus).

    Raises:
        MalformedFrame: wrong length, unknown head or function, head not matching the function,
            or an address out of range.
        ChecksumError: the BCC does not match.
    """
    frame = _check(frame, FRAME_LENGTH, "request")
    head, board, lock, func = frame[0], frame[1], frame[2], frame[3]
    try:
        function = Function(func)
    except ValueError:
        raise MalformedFrame(
            f"unknown 8A/80 function {func:02X} in {frame.hex(' ')}", frame
        ) from None
    if head != _HEAD_FOR[function]:
        raise MalformedFrame(f"head {head:02X} does not go with function {func:02X}", frame)
    try:
        return Request(function, board, lock)
    except ValueError as error:
        raise MalformedFrame(f"{error} in {frame.hex(' ')}", frame) from None


@dataclass(frozen=True, slots=True)
class LockReply:
    """A board's answer about one lock (to an open or a single query).

    Raises:
        ValueError: on construction, for an out-of-range address or a head other than 8A/80.
    """

    board: int
    lock: int
    is_open: bool
    head: int = HEAD_OPEN

    def __post_init__(self) -> None:
        validate_address(self.board, self.lock, allow_all=True)
        if self.head not in HEADS:
            raise ValueError(f"8A/80 replies start with 8A or 80, got {self.head:02X}")

    def encode(self) -> bytes:
        status = STATUS_OPEN if self.is_open else STATUS_CLOSED
        return _seal(bytes((self.head, self.board, self.lock, status)))


def decode_lock_reply(frame: bytes) -> LockReply:
    """Reads a 5-byte single-lock reply.

    Raises:
        MalformedFrame: wrong length or head, a status other than 00/11, an address out of range.
        ChecksumError: the BCC does not match.
    """
    frame = _check(frame, FRAME_LENGTH, "lock reply")
    head, board, lock, status = frame[0], frame[1], frame[2], frame[3]
    if status not in (STATUS_OPEN, STATUS_CLOSED):
        raise MalformedFrame(f"8A/80 lock status must be 00 or 11, got {status:02X}", frame)
    try:
        return LockReply(board, lock, status == STATUS_OPEN, head)
    except ValueError as error:
        raise MalformedFrame(f"{error} in {frame.hex(' ')}", frame) from None


@dataclass(frozen=True, slots=True)
class BoardReply:
    """A board's answer to a query-all: which of locks 1-24 are open.

    Raises:
        ValueError: on construction, for an out-of-range board, a lock outside 1-24 in
            ``open_locks``, or a head other than 8A/80.
    """

    board: int
    open_locks: frozenset[int]
    head: int = HEAD_QUERY

    def __post_init__(self) -> None:
        validate_address(self.board, 1)
        outside = sorted(n for n in self.open_locks if not 1 <= n <= QUERY_ALL_LOCKS)
        if outside:
            raise ValueError(f"a query-all reply covers locks 1-{QUERY_ALL_LOCKS}, not {outside}")
        if self.head not in HEADS:
            raise ValueError(f"8A/80 replies start with 8A or 80, got {self.head:02X}")

    def is_open(self, lock: int) -> bool:
        """Whether ``lock`` (1-24) reads open.

        Raises:
            ValueError: ``lock`` is outside 1-24, which this reply does not cover.
        """
        if not 1 <= lock <= QUERY_ALL_LOCKS:
            raise ValueError(f"a query-all reply covers locks 1-{QUERY_ALL_LOCKS}, not {lock}")
        return lock in self.open_locks

    def encode(self) -> bytes:
        closed = sum(
            1 << (n - 1) for n in range(1, QUERY_ALL_LOCKS + 1) if n not in self.open_locks
        )
        groups = closed.to_bytes(3, "big")  # S17-24 first, as on the wire
        return _seal(bytes((self.head, self.board, *groups, Function.QUERY)))


def decode_board_reply(frame: bytes) -> BoardReply:
    """Reads a 7-byte query-all reply.

    Raises:
        MalformedFrame: wrong length or head, a sixth byte other than 33, a board out of range.
        ChecksumError: the BCC does not match.
    """
    frame = _check(frame, BOARD_REPLY_LENGTH, "query-all reply")
    if frame[5] != Function.QUERY:
        raise MalformedFrame(f"query-all reply must carry 33 before BCC, got {frame[5]:02X}", frame)
    closed = int.from_bytes(frame[2:5], "big")
    open_locks = frozenset(n for n in range(1, QUERY_ALL_LOCKS + 1) if not closed >> (n - 1) & 1)
    try:
        return BoardReply(frame[1], open_locks, frame[0])
    except ValueError as error:
        raise MalformedFrame(f"{error} in {frame.hex(' ')}", frame) from None


def _seal(body: bytes) -> bytes:
    return body + bytes((bcc(body),))


def _check(frame: bytes, length: int, what: str) -> bytes:
    frame = bytes(frame)
    if len(frame) != length:
        raise MalformedFrame(f"an 8A/80 {what} has {length} bytes, got {len(frame)}", frame)
    if frame[0] not in HEADS:
        raise MalformedFrame(f"an 8A/80 {what} starts with 8A or 80, got {frame[0]:02X}", frame)
    if bcc(frame[:-1]) != frame[-1]:
        raise ChecksumError(
            f"8A/80 {what} {frame.hex(' ')}: BCC {frame[-1]:02X}, expected {bcc(frame[:-1]):02X}",
            frame,
        )
    return frame


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


REQUEST_FRAME: FrameSpec[Request] = FrameSpec("8A/80 request", HEADS, FRAME_LENGTH, decode_request)
LOCK_REPLY_FRAME: FrameSpec[LockReply] = FrameSpec(
    "8A/80 lock reply", HEADS, FRAME_LENGTH, decode_lock_reply
)
BOARD_REPLY_FRAME: FrameSpec[BoardReply] = FrameSpec(
    "8A/80 query-all reply", HEADS, BOARD_REPLY_LENGTH, decode_board_reply
)


class EightADialect(BoardDialect):
    """8A/80: an open is answered by the board; locks 1-24 are read with one query-all."""

    async def pulse(self, where: LockAddress) -> None:
        board, lock = where.board, where.lock
        await self.link.exchange(
            encode_open(board, lock),
            LOCK_REPLY_FRAME,
            lambda reply: reply.board == board and reply.lock == lock,
            what=f"open {where}",
        )

    async def read_board(self, board: int, locks: tuple[int, ...]) -> dict[int, DoorState]:
        states: dict[int, DoorState] = {}
        grouped = [lock for lock in locks if lock <= QUERY_ALL_LOCKS]
        if grouped:
            reply = await self.link.exchange(
                encode_query(board),
                BOARD_REPLY_FRAME,
                lambda r: r.board == board,
                what=f"query all of board {board}",
            )
            states.update({lock: DoorState.of(is_open=reply.is_open(lock)) for lock in grouped})
        for lock in locks:
            if lock > QUERY_ALL_LOCKS:
                states[lock] = await self.read_lock(LockAddress(board, lock))
        return states

    async def read_lock(self, where: LockAddress) -> DoorState:
        board, lock = where.board, where.lock
        reply = await self.link.exchange(
            encode_query(board, lock),
            LOCK_REPLY_FRAME,
            lambda r: r.board == board and r.lock == lock,
            what=f"query {where}",
        )
        return DoorState.of(is_open=reply.is_open)


def _dialect(link: SerialLink, config: SerialBankConfig) -> BoardDialect:
    return EightADialect(link)


PROTOCOL: BoardProtocol = register_protocol(
    BoardProtocol(
        name="8a80",
        title="8A/80",
        baudrate=BAUDRATE,
        first_board=MIN_BOARD,
        last_board=MAX_BOARD,
        max_locks=MAX_LOCK,
        validate_address=validate_address,
        request_frame=REQUEST_FRAME,
        dialect=_dialect,
    )
)
