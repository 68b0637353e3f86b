"""Which lock on which board opens each door.

Several lock-control boards share one RS-485 bus; the kiosk numbers its doors 1..N across all of
them. A `DoorMap` is that numbering, validated once: door numbers are positive, no two doors share
a lock, and (checked by the protocol that uses the map) every address is one the boards can have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from kiosk.hardware.errors import UnknownDoor


@dataclass(frozen=True, slots=True, order=True)
class LockAddress:
    """A lock's place on the bus: the board's address and the lock's channel on it (from 1).

    Raises:
        ValueError: on construction, for a negative board, a lock below 1, or a non-integer.
    """

    board: int
    lock: int

    def __post_init__(self) -> None:
        if not _is_int(self.board) or self.board < 0:
            raise ValueError(f"board address must be a non-negative integer, got {self.board!r}")
        if not _is_int(self.lock) or self.lock < 1:
            raise ValueError(f"lock number must be an integer from 1, got {self.lock!r}")

    def __str__(self) -> str:
        return f"board {self.board} lock {self.lock}"


@dataclass(frozen=True, slots=True)
class DoorMap:
    """Door numbers to lock addresses.

    Build it with `DoorMap.of` (explicit pairs) or `DoorMap.sequential` (boards in order).

    Raises:
        ValueError: on construction, when the map is empty, a door number is not a positive
            integer, or two doors share an address.
    """

    entries: Mapping[int, LockAddress]
    _by_address: Mapping[LockAddress, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a door map needs at least one door")
        by_address: dict[LockAddress, int] = {}
        for door, where in sorted(self.entries.items()):
            if not _is_int(door) or door < 1:
                raise ValueError(f"door numbers are positive integers, got {door!r}")
            if not isinstance(where, LockAddress):
                raise ValueError(f"door {door}: expected a LockAddress, got {where!r}")
            if where in by_address:
                raise ValueError(f"doors {by_address[where]} and {door} are both on {where}")
            by_address[where] = door
        object.__setattr__(self, "entries", MappingProxyType(dict(sorted(self.entries.items()))))
        object.__setattr__(self, "_by_address", MappingProxyType(by_address))

    @classmethod
    def of(cls, pairs: Mapping[int, LockAddress | tuple[int, int]]) -> DoorMap:
        """A map from ``{door: LockAddress or (board, lock)}``.

        Raises:
            ValueError: as the constructor, or for an address that is not a pair of integers.
        """
        entries: dict[int, LockAddress] = {}
        for door, where in pairs.items():
            if isinstance(where, LockAddress):
                entries[door] = where
            elif isinstance(where, tuple | list) and len(where) == 2:
                entries[door] = LockAddress(where[0], where[1])
            else:
                raise ValueError(f"door {door}: expected (board, lock), got {where!r}")
        return cls(entries)

    @classmethod
    def sequential(cls, boards: Sequence[tuple[int, int]], first_door: int = 1) -> DoorMap:
        """Numbers doors consecutively across boards: lock 1 of the first board is ``first_door``.

        Args:
            boards: ``(board address, lock count)`` in the order the doors are numbered.
            first_door: The number of the first door.

        Raises:
            ValueError: a lock count below 1, or as the constructor.
        """
        entries: dict[int, LockAddress] = {}
        door = first_door
        for board, count in boards:
            if not _is_int(count) or count < 1:
                raise ValueError(f"board {board}: lock count must be a positive integer")
            for lock in range(1, count + 1):
                entries[door] = LockAddress(board, lock)
                door += 1
        return cls(entries)

    @property
    def doors(self) -> tuple[int, ...]:
        """Door numbers, ascending."""
        return tuple(self.entries)

    def address(self, door: int) -> LockAddress:
        """The lock that opens ``door``.

        Raises:
            UnknownDoor: the door is not in the map.
        """
        try:
            return self.entries[door]
        except KeyError:
            raise UnknownDoor(door, self.doors) from None

    def door_at(self, where: LockAddress) -> int | None:
        """The door on ``where``, or None for a lock with no door."""
        return self._by_address.get(where)

    def locks_by_board(self) -> dict[int, tuple[int, ...]]:
        """Each board's mapped locks, ascending, boards in ascending order."""
        grouped: dict[int, list[int]] = {}
        for where in sorted(self.entries.values()):
            grouped.setdefault(where.board, []).append(where.lock)
        return {board: tuple(locks) for board, locks in grouped.items()}

    def addresses(self) -> Iterable[tuple[int, LockAddress]]:
        """``(door, address)`` pairs in door order."""
        return self.entries.items()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
