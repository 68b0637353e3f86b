"""Simulated lock-control boards on a simulated RS-485 bus (a pseudo-terminal).

`LockBoardSimulator` puts one or more boards speaking the "8A/80" or the Kerong KR-CU16 protocol
on a pseudo-terminal. The kiosk opens `LockBoardSimulator.path` exactly as it opens a real
adapter; the simulator answers with the real bytes. Each board has `SimulatedDoor` doors and the
faults of a real installation:

- per door (see `SimulatedDoor`): jammed, dead solenoid, stuck sensor, forced open;
- per board (`SimulatedLockBoard`): power loss (silent, and pulses do nothing until power is
  back), mute (acts on requests but never answers: a broken transmit line), corrupted replies
  (bad checksum, always or for the next n replies), slow replies;
- on the bus: noise before every reply, or a burst of garbage now.

Replies as boards send them: an 8A/80 open is answered with head 8A, queries with head 80; a
query-all covers locks 1-24; an open-all (lock 0) is not answered. A Kerong board answers status
queries and, when ``answers_unlock`` is set, unlocks too (with its status).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

from hardware_sim.doors import SimulatedDoor
from hardware_sim.pty_device import PtyDevice
from kiosk.hardware.protocols import BoardProtocol, eight_a, kerong
from kiosk.hardware.protocols.framing import FrameReader
from kiosk.hardware.protocols.kerong import LockBitPolarity

log = logging.getLogger(__name__)

Request = eight_a.Request | kerong.Request


class SimulatedLockBoard:
    """One board on the bus: its doors and its board-level faults. Thread-safe.

    Args:
        address: The board's bus address.
        locks: How many channels it has.
        spring_delay_s: Passed to each `SimulatedDoor`.
    """

    def __init__(self, address: int, locks: int, *, spring_delay_s: float = 0.0) -> None:
        self.address = address
        self.locks = locks
        self.doors = {n: SimulatedDoor(spring_delay_s=spring_delay_s) for n in range(1, locks + 1)}
        self._lock = threading.Lock()
        self._powered = True
        self._muted = False
        self._corrupt_always = False
        self._corrupt_next = 0
        self.reply_delay_s = 0.0

    def door(self, lock: int) -> SimulatedDoor:
        """The door on channel ``lock``.

        Raises:
            ValueError: the board has no such channel.
        """
        try:
            return self.doors[lock]
        except KeyError:
            raise ValueError(f"board {self.address} has locks 1-{self.locks}, not {lock}") from None

    @property
    def powered(self) -> bool:
        """Whether the board has power (see `power_off`)."""
        with self._lock:
            return self._powered

    @property
    def muted(self) -> bool:
        """Whether the board is muted (see `mute`)."""
        with self._lock:
            return self._muted

    @property
    def corrupting(self) -> bool:
        """Whether the board's next reply will carry a bad checksum (see `corrupt_replies`)."""
        with self._lock:
            return self._corrupt_always or self._corrupt_next > 0

    def power_off(self) -> None:
        """Cuts power: the board hears nothing, answers nothing, pulses nothing."""
        with self._lock:
            self._powered = False

    def power_on(self) -> None:
        """Restores power; doors are as they were left."""
        with self._lock:
            self._powered = True

    def mute(self, muted: bool = True) -> None:
        """A muted board still acts on requests but never answers (a broken transmit line)."""
        with self._lock:
            self._muted = muted

    def corrupt_replies(self, *, always: bool | None = None, next_n: int | None = None) -> None:
        """Sends replies with a wrong checksum: all of them (``always``) or the next ``next_n``."""
        with self._lock:
            if always is not None:
                self._corrupt_always = always
            if next_n is not None:
                self._corrupt_next = next_n

    def wire_bytes(self, frame: bytes) -> bytes | None:
        """The bytes this board puts on the wire for ``frame``, faults applied; None if silent."""
        with self._lock:
            if self._muted or not self._powered:
                return None
            corrupt = self._corrupt_always or self._corrupt_next > 0
            self._corrupt_next = max(0, self._corrupt_next - 1)
        return frame[:-1] + bytes((frame[-1] ^ 0xFF,)) if corrupt else frame


class LockBoardSimulator:
    """Boards on one simulated bus, served on a pseudo-terminal by a background thread.

    Args:
        protocol: What the boards speak.
        boards: Board address to channel count (8A/80: addresses 1-32, up to 50 locks; Kerong:
            addresses 0-15, up to 16 locks).
        spring_delay_s: Seconds from an effective pulse to a door reading open.
        lock_bit_polarity: Kerong: what a set lock bit means in status replies.
        answers_unlock: Kerong: whether boards answer an unlock (with their status).

    Raises:
        ValueError: on construction, for no boards, or an address or lock count the protocol
            cannot have.
    """

    def __init__(
        self,
        protocol: BoardProtocol,
        boards: Mapping[int, int],
        *,
        spring_delay_s: float = 0.1,
        lock_bit_polarity: LockBitPolarity = LockBitPolarity.SET_MEANS_LOCKED,
        answers_unlock: bool = True,
    ) -> None:
        if not boards:
            raise ValueError("a simulated bus needs at least one board")
        try:
            self._reply = _REPLIES[protocol.name]
        except KeyError:
            speaks = ", ".join(repr(name) for name in SIMULATED_PROTOCOLS)
            raise ValueError(
                f"the simulator does not speak protocol {protocol.name!r}; it speaks {speaks}"
            ) from None
        validate = protocol.validate_address
        for address, locks in boards.items():
            try:
                validate(address, locks)  # a lock count is valid when its last lock number is
            except ValueError as error:
                raise ValueError(f"board {address} with {locks} locks: {error}") from None
        self.protocol = protocol
        self.lock_bit_polarity = lock_bit_polarity
        self.answers_unlock = answers_unlock
        self.boards = {
            address: SimulatedLockBoard(address, locks, spring_delay_s=spring_delay_s)
            for address, locks in sorted(boards.items())
        }
        self.noise_before_replies = b""
        self._reader: FrameReader[Request] = FrameReader(protocol.request_frame)
        self._requests: list[Request] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._pty = PtyDevice(self._on_bytes, name=f"lock-board-{protocol}")

    @property
    def path(self) -> str:
        """The device path the kiosk opens."""
        return self._pty.path

    def board(self, address: int) -> SimulatedLockBoard:
        """The board at ``address``.

        Raises:
            ValueError: no board has that address.
        """
        try:
            return self.boards[address]
        except KeyError:
            raise ValueError(f"no simulated board at address {address}") from None

    def door(self, board: int, lock: int) -> SimulatedDoor:
        """The door on channel ``lock`` of ``board``. Raises ValueError as `board`."""
        return self.board(board).door(lock)

    def requests(self) -> list[Request]:
        """Every well-formed request seen on the bus so far, whether or not a board answered."""
        with self._log_lock:
            return list(self._requests)

    @property
    def rejected_requests(self) -> int:
        """Request candidates dropped for a bad checksum or shape."""
        return self._reader.rejected

    def inject_garbage(self, data: bytes) -> None:
        """Puts ``data`` on the bus now, as line noise."""
        self._pty.write(data)

    def start(self) -> None:
        """Starts serving. Idempotent."""
        self._pty.start()

    def stop(self) -> None:
        """Stops serving and closes the pseudo-terminal. Idempotent."""
        self._stopping.set()
        self._pty.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _on_bytes(self, data: bytes) -> None:
        for request in self._reader.feed(data):
            with self._log_lock:
                self._requests.append(request)
            board = self.boards.get(request.board)
            if board is None or not board.powered:
                continue
            reply = self._reply(self, board, request)
            if reply is not None:
                self._send(board, reply)

    def _eight_a(self, board: SimulatedLockBoard, request: Request) -> bytes | None:
        assert isinstance(request, eight_a.Request)
        if request.lock > board.locks:
            return None  # no such channel: real boards stay silent
        if request.function is eight_a.Function.OPEN:
            if request.lock == eight_a.ALL_LOCKS:
                for door in board.doors.values():
                    door.pulse()
                return None
            door = board.door(request.lock)
            door.pulse()
            return eight_a.LockReply(
                board.address, request.lock, door.sensor_reads_open(), eight_a.HEAD_OPEN
            ).encode()
        if request.lock == eight_a.ALL_LOCKS:
            covered = range(1, min(board.locks, eight_a.QUERY_ALL_LOCKS) + 1)
            open_locks = frozenset(n for n in covered if board.door(n).sensor_reads_open())
            return eight_a.BoardReply(board.address, open_locks, eight_a.HEAD_QUERY).encode()
        door = board.door(request.lock)
        return eight_a.LockReply(
            board.address, request.lock, door.sensor_reads_open(), eight_a.HEAD_QUERY
        ).encode()

    def _kerong(self, board: SimulatedLockBoard, request: Request) -> bytes | None:
        assert isinstance(request, kerong.Request)
        if request.command is kerong.Command.UNLOCK:
            if request.lock <= board.locks:
                board.door(request.lock).pulse()
            if not self.answers_unlock:
                return None
        status = kerong.StatusReply.from_states(
            board.address,
            (n for n, door in board.doors.items() if door.sensor_reads_open()),
            (n for n, door in board.doors.items() if door.occupied),
            self.lock_bit_polarity,
        )
        return dataclasses.replace(status, lock_index=request.lock - 1).encode()

    def _send(self, board: SimulatedLockBoard, reply: bytes) -> None:
        # The delay runs in the bus thread, so it also holds up later requests, as a slow
        # board holds up a half-duplex bus.
        if board.reply_delay_s and self._stopping.wait(board.reply_delay_s):
            return
        outgoing = board.wire_bytes(reply)
        if outgoing is None:
            log.debug("board %d silent", board.address)
            return
        self._pty.write(self.noise_before_replies + outgoing)


# How simulated boards answer, per protocol name. A protocol the kiosk knows but the simulator
# does not is refused by name when a bus is built, rather than answered in another's bytes.
_REPLIES: dict[str, Callable[[LockBoardSimulator, SimulatedLockBoard, Request], bytes | None]] = {
    eight_a.PROTOCOL.name: LockBoardSimulator._eight_a,
    kerong.PROTOCOL.name: LockBoardSimulator._kerong,
}
SIMULATED_PROTOCOLS: tuple[str, ...] = tuple(sorted(_REPLIES))
