"""The Kerong KR-CU16 lock-board protocol: a pure byte codec.

A KR-CU16 drives 16 locks and reads 16 IR (occupancy) sensors, 19200 8N1. Requests are
``02 ADDR CMD 03 SUM`` with ``ADDR = (board << 4) | lock index`` (index 0-15 for locks 1-16,
so boards are 0-15), ``CMD`` 30 = status, 31 = unlock, and ``SUM`` the byte sum of everything
before it, modulo 256. The status reply is 9 bytes:
``02 ADDR 35 L1-8 L9-16 IR1-8 IR9-16 03 SUM`` with bit 0 of each group for its lowest channel.

Public implementations disagree on the lock-bit polarity, so `StatusReply.is_open` takes a
`LockBitPolarity` from configuration. An IR bit set is read as "something in the compartment".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

from kiosk.hardware.door_bank import DoorState
from kiosk.hardware.door_map import LockAddress
from kiosk.hardware.errors import ChecksumError, LockBoardError, MalformedFrame
from kiosk.hardware.protocols import BoardProtocol, register_protocol
from kiosk.hardware.protocols.dialect import BoardDialect
from kiosk.hardware.protocols.framing import FrameSpec

if TYPE_CHECKING:
    from kiosk.hardware.serial_board import SerialBankConfig
    from kiosk.hardware.serial_link import SerialLink

log = logging.getLogger(__name__)

BAUDRATE = 19200
STX = 0x02
ETX = 0x03
STATUS_REPLY = 0x35
MAX_BOARD = 15
LOCKS_PER_BOARD = 16
REQUEST_LENGTH = 5
STATUS_REPLY_LENGTH = 9
_ALL_BITS = (1 << LOCKS_PER_BOARD) - 1


class Command(IntEnum):
    """The CMD byte of a request."""

    STATUS = 0x30
    UNLOCK = 0x31


class LockBitPolarity(StrEnum):
    """What a set lock bit in a status reply means (configuration key ``lock_bit_polarity``)."""

    SET_MEANS_LOCKED = "set_means_locked"
    SET_MEANS_OPEN = "set_means_open"

    @classmethod
    def parse(cls, value: str) -> LockBitPolarity:
        """Reads a polarity name.

        Raises:
            ValueError: not ``set_means_locked`` or ``set_means_open``.
        """
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(repr(p.value) for p in cls)
            raise ValueError(f"unknown lock bit polarity {value!r}; expected {names}") from None


def checksum(data: bytes) -> int:
    """SUM: the byte sum of ``data`` modulo 256."""
    return sum(data) & 0xFF


def validate_address(board: int, lock: int = 1) -> None:
    """Checks a board number (0-15) and a lock number (1-16).

    Raises:
        ValueError: either is out of range (or not an int).
    """
    if not _is_int(board) or not 0 <= board <= MAX_BOARD:
        raise ValueError(f"Kerong board number must be 0-{MAX_BOARD}, got {board!r}")
    if not _is_int(lock) or not 1 <= lock <= LOCKS_PER_BOARD:
        raise ValueError(f"Kerong lock number must be 1-{LOCKS_PER_BOARD}, got {lock!r}")


def address(board: int, lock: int = 1) -> int:
    """The ADDR byte for ``lock`` (1-16) on ``board`` (0-15).

    Raises:
        ValueError: either number is out of range.
    """
    validate_address(board, lock)
    return board << 4 | (lock - 1)


@dataclass(frozen=True, slots=True)
class Request:
    """A request from the kiosk. A status request addresses the board; its lock is 1 (index 0).

    Raises:
        ValueError: on construction, for an out-of-range board or lock.
    """

    command: Command
    board: int
    lock: int = 1

    def __post_init__(self) -> None:
        validate_address(self.board, self.lock)

    @property
    def address(self) -> int:
        return address(self.board, self.lock)

    def encode(self) -> bytes:
        return _seal(bytes((STX, self.address, self.command, ETX)))


def encode_unlock(board: int, lock: int) -> bytes:
    """The frame that unlocks ``lock`` (1-16) on ``board`` (0-15).

    Raises:
        ValueError: either number is out of range.
    """
    return Request(Command.UNLOCK, board, lock).encode()


def encode_status_query(board: int) -> bytes:
    """The frame that asks ``board`` (0-15) for its lock and IR bits.

    Raises:
        ValueError: the board is out of range.
    """
    return Request(Command.STATUS, board).encode()


def decode_request(frame: bytes) -> Request:
    """Reads a request frame (the simulator's side of the bus).

    Raises:
        MalformedFrame: wrong length, missing STX/ETX, unknown command.
        ChecksumError: the SUM does not match.
    """
    frame = _check(frame, REQUEST_LENGTH, "request")
    try:
        command = Command(frame[2])
    except ValueError:
        raise MalformedFrame(f"unknown Kerong command {frame[2]:02X}", frame) from None
    return Request(command, frame[1] >> 4, (frame[1] & 0x0F) + 1)


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A board's status: raw lock bits and IR bits as on the wire (bit 0 = channel 1).

    Attributes:
        board: The board that answered (high nibble of ADDR).
        lock_bits: 16 lock feedback bits; their meaning depends on `LockBitPolarity`.
        ir_bits: 16 IR bits; set means something is in the compartment.
        lock_index: The low nibble of ADDR as the board echoed it (0 for a status query).

    Raises:
        ValueError: on construction, for a board out of range or bits wider than 16.
    """

    board: int
    lock_bits: int
    ir_bits: int = 0
    lock_index: int = 0

    def __post_init__(self) -> None:
        validate_address(self.board)
        for name in ("lock_bits", "ir_bits"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value <= _ALL_BITS:
                raise ValueError(f"{name} must be a 16-bit value, got {value!r}")
        if not _is_int(self.lock_index) or not 0 <= self.lock_index < LOCKS_PER_BOARD:
            raise ValueError(f"lock_index must be 0-15, got {self.lock_index!r}")

    @classmethod
    def from_states(
        cls,
        board: int,
        open_locks: Iterable[int],
        occupied: Iterable[int] = (),
        polarity: LockBitPolarity = LockBitPolarity.SET_MEANS_LOCKED,
    ) -> StatusReply:
        """Builds the reply a board with these open locks and occupied compartments sends.

        Raises:
            ValueError: a lock or compartment number is outside 1-16.
        """
        open_bits = _bits(open_locks)
        lock_bits = open_bits if polarity is LockBitPolarity.SET_MEANS_OPEN else ~open_bits
        return cls(board, lock_bits & _ALL_BITS, _bits(occupied))

    def is_open(self, lock: int, polarity: LockBitPolarity) -> bool:
        """Whether ``lock`` (1-16) reads open under ``polarity``.

        Raises:
            ValueError: ``lock`` is outside 1-16.
        """
        bit = bool(self.lock_bits >> _index(lock) & 1)
        return bit if polarity is LockBitPolarity.SET_MEANS_OPEN else not bit

    def occupied(self, lock: int) -> bool:
        """Whether the IR sensor of compartment ``lock`` (1-16) sees something.

        Raises:
            ValueError: ``lock`` is outside 1-16.
        """
        return bool(self.ir_bits >> _index(lock) & 1)

    def encode(self) -> bytes:
        locks = self.lock_bits.to_bytes(2, "little")  # L1-8 first
        irs = self.ir_bits.to_bytes(2, "little")  # IR1-8 first
        addr = self.board << 4 | self.lock_index
        return _seal(bytes((STX, addr, STATUS_REPLY, *locks, *irs, ETX)))


def decode_status_reply(frame: bytes) -> StatusReply:
    """Reads a 9-byte status reply.

    Raises:
        MalformedFrame: wrong length, missing STX/ETX, a reply code other than 35.
        ChecksumError: the SUM does not match.
    """
    frame = _check(frame, STATUS_REPLY_LENGTH, "status reply")
    if frame[2] != STATUS_REPLY:
        raise MalformedFrame(f"Kerong status reply code must be 35, got {frame[2]:02X}", frame)
    return StatusReply(
        board=frame[1] >> 4,
        lock_bits=int.from_bytes(frame[3:5], "little"),
        ir_bits=int.from_bytes(frame[5:7], "little"),
        lock_index=frame[1] & 0x0F,
    )


def _index(lock: int) -> int:
    if not _is_int(lock) or not 1 <= lock <= LOCKS_PER_BOARD:
        raise ValueError(f"Kerong lock number must be 1-{LOCKS_PER_BOARD}, got {lock!r}")
    return lock - 1


def _bits(locks: Iterable[int]) -> int:
    return sum({1 << _index(lock) for lock in locks})


def _seal(body: bytes) -> bytes:
    return body + bytes((checksum(body),))


def _check(frame: bytes, length: int, what: str) -> bytes:
    frame = bytes(frame)
    if len(frame) != length:
        raise MalformedFrame(f"a Kerong {what} has {length} bytes, got {len(frame)}", frame)
    if frame[0] != STX or frame[-2] != ETX:
        raise MalformedFrame(f"a Kerong {what} is framed by 02 ... 03, got {frame.hex(' ')}", frame)
    if checksum(frame[:-1]) != frame[-1]:
        raise ChecksumError(
            f"Kerong {what} {frame.hex(' ')}: SUM {frame[-1]:02X}, "
            f"expected {checksum(frame[:-1]):02X}",
            frame,
        )
    return frame


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


REQUEST_FRAME: FrameSpec[Request] = FrameSpec(
    "Kerong request", frozenset({STX}), REQUEST_LENGTH, decode_request
)
STATUS_REPLY_FRAME: FrameSpec[StatusReply] = FrameSpec(
    "Kerong status reply", frozenset({STX}), STATUS_REPLY_LENGTH, decode_status_reply
)


class KerongDialect(BoardDialect):
    """Kerong: every unlock is followed by a status query, whose reply is the receipt."""

    def __init__(self, link: SerialLink, polarity: LockBitPolarity, listen_s: float) -> None:
        super().__init__(link)
        self.polarity = polarity
        self.listen_s = listen_s

    async def pulse(self, where: LockAddress) -> None:
        request = encode_unlock(where.board, where.lock)
        failure: LockBoardError | None = None
        # The status reply is the only receipt a Kerong board reliably gives; when it is
        # missing the unlock may not have been heard either, so both are sent again.
        attempts = 1 + self.link.retries
        for attempt in range(1, attempts + 1):
            await self.link.send(request, what=f"unlock {where}", listen_s=self.listen_s)
            try:
                await self._status(where.board, retries=0)
            except LockBoardError as error:
                failure = error
                if attempt < attempts:
                    log.warning("unlock %s, attempt %d of %d: %s", where, attempt, attempts, error)
            else:
                return
        assert failure is not None
        raise failure

    async def read_board(self, board: int, locks: tuple[int, ...]) -> dict[int, DoorState]:
        reply = await self._status(board)
        return {
            lock: DoorState.of(
                is_open=reply.is_open(lock, self.polarity), occupied=reply.occupied(lock)
            )
            for lock in locks
        }

    async def _status(self, board: int, retries: int | None = None) -> StatusReply:
        return await self.link.exchange(
            encode_status_query(board),
            STATUS_REPLY_FRAME,
            lambda reply: reply.board == board,
            what=f"status of board {board}",
            retries=retries,
        )


def _dialect(link: SerialLink, config: SerialBankConfig) -> BoardDialect:
    return KerongDialect(link, config.lock_bit_polarity, config.unlock_listen_s)


PROTOCOL: BoardProtocol = register_protocol(
    BoardProtocol(
        name="kerong",
        title="Kerong",
        baudrate=BAUDRATE,
        first_board=0,
        last_board=MAX_BOARD,
        max_locks=LOCKS_PER_BOARD,
        validate_address=validate_address,
        request_frame=REQUEST_FRAME,
        dialect=_dialect,
    )
)
