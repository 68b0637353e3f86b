"""Doors on RS-485 lock-control boards ("8A/80" or Kerong KR-CU16), as a `DoorBank`.

The bank turns door numbers into board exchanges through a per-protocol dialect:

- 8A/80: an open is answered by the board (the answer is the delivery receipt); the whole board
  is read with one query-all for locks 1-24 and one single query per lock above 24.
- Kerong: implementations disagree on whether a board answers an unlock, so the bank sends the
  unlock, listens out any answer, and then requires a status reply as the delivery receipt. If
  no status comes back, the unlock and the status query are repeated together.

Either way `DoorBank.unlock` then confirms the opening itself by polling status, so every unlock is
confirmed by a status query. All IO goes through one `SerialLink`: one request on the bus at a time.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.hardware.door_bank import DoorBank, DoorState, UnlockTiming
from kiosk.hardware.door_map import DoorMap, LockAddress
from kiosk.hardware.errors import LockBoardError
from kiosk.hardware.protocols import BoardProtocol, eight_a, kerong
from kiosk.hardware.protocols.kerong import LockBitPolarity
from kiosk.hardware.serial_link import SerialLink, SerialPort, open_serial_port

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SerialBankConfig:
    """Configuration of a lock-board bus (the ``[doors.serial]`` table).

    Attributes:
        port: Serial device of the RS-485 adapter.
        protocol: What the boards speak.
        door_map: Door numbers to (board, lock); every address must suit ``protocol``.
        baudrate: Line speed; None for the protocol's default (9600 for 8A/80, 19200 for Kerong).
        request_timeout_s: How long one attempt waits for a reply.
        retries: Further attempts after a timeout or a corrupted reply.
        unlock_listen_s: Kerong only: how long to listen out a possible answer to an unlock.
        lock_bit_polarity: Kerong only: what a set lock bit means.

    Raises:
        ValueError: on construction, for an empty port, a non-positive timeout or baudrate, a
            negative retry count or listen time, or an address the protocol cannot carry.
    """

    port: str
    protocol: BoardProtocol
    door_map: DoorMap
    baudrate: int | None = None
    request_timeout_s: float = 0.25
    retries: int = 2
    unlock_listen_s: float = 0.05
    lock_bit_polarity: LockBitPolarity = LockBitPolarity.SET_MEANS_LOCKED

    def __post_init__(self) -> None:
        if not self.port:
            raise ValueError("port must name a serial device")
        if self.baudrate is not None and not self.baudrate > 0:
            raise ValueError(f"baudrate must be positive, got {self.baudrate!r}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be positive, got {self.request_timeout_s!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries!r}")
        if self.unlock_listen_s < 0:
            raise ValueError(f"unlock_listen_s must be 0 or more, got {self.unlock_listen_s!r}")
        validate = _VALIDATORS[self.protocol]
        for door, where in self.door_map.addresses():
            try:
                validate(where.board, where.lock)
            except ValueError as error:
                raise ValueError(f"door {door} ({where}): {error}") from None

    @property
    def effective_baudrate(self) -> int:
        if self.baudrate is not None:
            return self.baudrate
        return eight_a.BAUDRATE if self.protocol is BoardProtocol.EIGHT_A else kerong.BAUDRATE


_VALIDATORS: dict[BoardProtocol, Callable[[int, int], None]] = {
    BoardProtocol.EIGHT_A: eight_a.validate_address,
    BoardProtocol.KERONG: kerong.validate_address,
}


class SerialBoardBank(DoorBank):
    """Doors behind lock-control boards on one RS-485 bus.

    The port opens on the first request, so constructing a bank does no IO.

    Args:
        config: The bus and its door map.
        timing: How long `unlock` waits for the sensor.
        opener: Opens the serial port; pyserial unless a test supplies another.
    """

    def __init__(
        self,
        config: SerialBankConfig,
        timing: UnlockTiming | None = None,
        *,
        opener: Callable[[str, int, float], SerialPort] = open_serial_port,
    ) -> None:
        super().__init__(timing)
        self.config = config
        self._link = SerialLink(
            config.port,
            config.effective_baudrate,
            request_timeout_s=config.request_timeout_s,
            retries=config.retries,
            opener=opener,
        )
        self._dialect: _Dialect
        if config.protocol is BoardProtocol.EIGHT_A:
            self._dialect = _EightADialect(self._link)
        else:
            self._dialect = _KerongDialect(
                self._link, config.lock_bit_polarity, config.unlock_listen_s
            )

    @property
    def doors(self) -> tuple[int, ...]:
        return self.config.door_map.doors

    async def _pulse(self, door: int) -> None:
        await self._dialect.pulse(self.config.door_map.address(door))

    async def read_states(self) -> dict[int, DoorState]:
        door_map = self.config.door_map
        states: dict[int, DoorState] = {}
        for board, locks in door_map.locks_by_board().items():
            for lock, state in (await self._dialect.read_board(board, locks)).items():
                door = door_map.door_at(LockAddress(board, lock))
                if door is not None:
                    states[door] = state
        return dict(sorted(states.items()))

    async def _read_door(self, door: int) -> DoorState:
        return await self._dialect.read_lock(self.config.door_map.address(door))

    async def aclose(self) -> None:
        await self._link.aclose()


class _Dialect(ABC):
    """How one protocol pulses a lock and reads a board over a `SerialLink`."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link

    @abstractmethod
    async def pulse(self, where: LockAddress) -> None:
        """Delivers an unlock, with a reply from the board as receipt.

        Raises:
            LockBoardError: no receipt after the link's retries.
        """

    @abstractmethod
    async def read_board(self, board: int, locks: tuple[int, ...]) -> dict[int, DoorState]:
        """Reads ``locks`` of ``board``.

        Raises:
            LockBoardError: the board did not answer usefully after the link's retries.
        """

    async def read_lock(self, where: LockAddress) -> DoorState:
        """Reads one lock. Raises as `read_board`."""
        return (await self.read_board(where.board, (where.lock,)))[where.lock]


class _EightADialect(_Dialect):
    async def pulse(self, where: LockAddress) -> None:
        board, lock = where.board, where.lock
        await self.link.exchange(
            eight_a.encode_open(board, lock),
            eight_a.LOCK_REPLY_FRAME,
            lambda reply: reply.board == board and reply.lock == lock,
            what=f"open {where}",
        )

    async def read_board(self, board: int, locks: tuple[int, ...]) -> dict[int, DoorState]:
        states: dict[int, DoorState] = {}
        grouped = [lock for lock in locks if lock <= eight_a.QUERY_ALL_LOCKS]
        if grouped:
            reply = await self.link.exchange(
                eight_a.encode_query(board),
                eight_a.BOARD_REPLY_FRAME,
                lambda r: r.board == board,
                what=f"query all of board {board}",
            )
            states.update({lock: DoorState.of(is_open=reply.is_open(lock)) for lock in grouped})
        for lock in locks:
            if lock > eight_a.QUERY_ALL_LOCKS:
                states[lock] = await self.read_lock(LockAddress(board, lock))
        return states

    async def read_lock(self, where: LockAddress) -> DoorState:
        board, lock = where.board, where.lock
        reply = await self.link.exchange(
            eight_a.encode_query(board, lock),
            eight_a.LOCK_REPLY_FRAME,
            lambda r: r.board == board and r.lock == lock,
            what=f"query {where}",
        )
        return DoorState.of(is_open=reply.is_open)


class _KerongDialect(_Dialect):
    def __init__(self, link: SerialLink, polarity: LockBitPolarity, listen_s: float) -> None:
        super().__init__(link)
        self.polarity = polarity
        self.listen_s = listen_s

    async def pulse(self, where: LockAddress) -> None:
        request = kerong.encode_unlock(where.board, where.lock)
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

    async def _status(self, board: int, retries: int | None = None) -> kerong.StatusReply:
        return await self.link.exchange(
            kerong.encode_status_query(board),
            kerong.STATUS_REPLY_FRAME,
            lambda reply: reply.board == board,
            what=f"status of board {board}",
            retries=retries,
        )
