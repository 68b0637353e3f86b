"""Doors on RS-485 lock-control boards, as a `DoorBank` (the ``serial`` door backend).

The bank turns door numbers into board exchanges through the dialect of the configured protocol
(see `kiosk.hardware.protocols`; each protocol's module supplies its own). The built-in ones:

- 8A/80: an open is answered by the board (the answer is the delivery receipt); the whole board
  is read with one query-all for locks 1-24 and one single query per lock above 24.
- Kerong: implementations disagree on whether a board answers an unlock, so the bank sends the
  unlock, listens out any answer, and then requires a status reply as the delivery receipt. If
  no status comes back, the unlock and the status query are repeated together.

Either way `DoorBank.unlock` then confirms the opening itself by polling status, so every unlock is
confirmed by a status query. All IO goes through one `SerialLink`: one request on the bus at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kiosk.hardware.door_bank import DoorBank, DoorState, UnlockTiming
from kiosk.hardware.door_map import DoorMap, LockAddress
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.protocols.kerong import LockBitPolarity
from kiosk.hardware.serial_link import SerialLink, SerialPort, open_serial_port


@dataclass(frozen=True, slots=True)
class SerialBankConfig:
    """Configuration of a lock-board bus (the ``[doors.serial]`` table).

    Attributes:
        port: Serial device of the RS-485 adapter.
        protocol: What the boards speak (a registered protocol, see `protocol_named`).
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
        validate = self.protocol.validate_address
        for door, where in self.door_map.addresses():
            try:
                validate(where.board, where.lock)
            except ValueError as error:
                raise ValueError(f"door {door} ({where}): {error}") from None

    @property
    def effective_baudrate(self) -> int:
        if self.baudrate is not None:
            return self.baudrate
        return self.protocol.baudrate


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
        self._dialect = config.protocol.dialect(self._link, config)

    @property
    def doors(self) -> tuple[int, ...]:
        return self.config.door_map.doors

    @contextlib.asynccontextmanager
    async def _pulse_turn(self) -> AsyncIterator[None]:
        # The pulse's frames may queue behind polls that time out: its turn is when it holds
        # the bus, which it keeps for all its exchanges.
        async with self._link.hold():
            yield

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
