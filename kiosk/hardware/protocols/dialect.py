"""What a protocol's module supplies to drive its boards: a `BoardDialect` over a serial link.

The codec functions of a protocol module are pure; its dialect is the one piece that talks, and
only through the `SerialLink` it is given (which owns the port, timeouts and retries), so a
dialect never opens anything itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.hardware.door_bank import DoorState
    from kiosk.hardware.door_map import LockAddress
    from kiosk.hardware.serial_link import SerialLink


class BoardDialect(ABC):
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
