"""The layout of a simulated door bank: how many doors of each size, on which lock boards.

A field tech describes a location as a door count and a size mix (``small=8,medium=6``). The boards
are either given (``1:24,2:24``) or chosen: as few as the protocol needs, filled in address order.
`BankLayout` numbers the doors 1..N across the boards in that order, exactly as the kiosk's
``doors.serial.boards`` setting numbers them, and hands out sizes in the order of the mix. So the
kiosk configuration it writes (`BankLayout.kiosk_config`, `BankLayout.kiosk_toml`) opens the same
doors the simulator lists, and the sizes it lists are the sizes a tech registers with the cloud.

Everything here is pure: no pseudo-terminals, no threads.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.protocols.kerong import LockBitPolarity
from shared.sizes import Size, SizeError


class LayoutError(ValueError):
    """A door count, size mix or board list that cannot be built; the message says why."""


@dataclass(frozen=True, slots=True)
class BoardLimits:
    """What one protocol's bus can hold.

    Attributes:
        name: The protocol as techs write it (``8A/80``, ``Kerong``).
        first_address: The lowest board address.
        last_address: The highest board address.
        max_locks: Channels on the biggest board.
    """

    name: str
    first_address: int
    last_address: int
    max_locks: int

    @classmethod
    def of(cls, protocol: BoardProtocol) -> BoardLimits:
        """The limits ``protocol`` registered."""
        return cls(protocol.title, protocol.first_board, protocol.last_board, protocol.max_locks)

    @property
    def addresses(self) -> range:
        """Every board address, in order."""
        return range(self.first_address, self.last_address + 1)

    def max_doors(self, locks_per_board: int) -> int:
        """Doors a full bus holds with boards of ``locks_per_board`` channels."""
        return len(self.addresses) * locks_per_board


@dataclass(frozen=True, slots=True)
class BankDoor:
    """One door of the bank: its kiosk number, its size, and the lock that opens it."""

    number: int
    size: Size
    board: int
    lock: int


def parse_size_mix(text: str) -> tuple[tuple[Size, int], ...]:
    """Reads a size mix such as ``small=8,medium=6,large=4,xlarge=2``, in the order given.

    A count may be 0 (a size the location lacks). Each size may appear once.

    Raises:
        LayoutError: a part is not ``SIZE=COUNT``, the size is unknown, the count is not a
            whole number of 0 or more, or a size repeats.
    """
    mix: dict[Size, int] = {}
    for part in _parts(text, "size mix"):
        name, equals, count = part.partition("=")
        if not equals:
            raise LayoutError(f"expected SIZE=COUNT in the size mix, got {part!r}")
        try:
            size = Size.parse(name)
        except SizeError as error:
            raise LayoutError(str(error)) from None
        if size in mix:
            raise LayoutError(f"size {size.value!r} appears twice in the size mix")
        mix[size] = _whole_number(count, f"the count of {size.value} doors", minimum=0)
    return tuple(mix.items())


def parse_board_list(text: str) -> tuple[tuple[int, int | None], ...]:
    """Reads a board list such as ``1:24,2:24`` (``ADDRESS:LOCKS``; a bare address: a full board).

    Ranges are checked by `BankLayout.plan`, which knows the protocol.

    Raises:
        LayoutError: a part is not ``ADDRESS`` or ``ADDRESS:LOCKS`` in whole numbers.
    """
    boards: list[tuple[int, int | None]] = []
    for part in _parts(text, "board list"):
        address, colon, locks = part.partition(":")
        boards.append(
            (
                _whole_number(address, "a board address", minimum=0),
                _whole_number(locks, f"the lock count of board {address.strip()}", minimum=1)
                if colon
                else None,
            )
        )
    return tuple(boards)


@dataclass(frozen=True, slots=True)
class BankLayout:
    """Doors numbered 1..N across simulated boards. Build it with `plan`.

    Attributes:
        protocol: What the boards speak.
        boards: Every simulated board as ``(address, channels)``, in door-numbering order; a
            board may have spare channels, or no doors at all when more boards were given than
            the doors need.
        doors: The doors, by number.
    """

    protocol: BoardProtocol
    boards: tuple[tuple[int, int], ...]
    doors: tuple[BankDoor, ...]

    @classmethod
    def plan(
        cls,
        protocol: BoardProtocol,
        *,
        doors: int | None = None,
        sizes: Sequence[tuple[Size, int]] | None = None,
        boards: Sequence[tuple[int, int | None]] | None = None,
        locks_per_board: int | None = None,
    ) -> BankLayout:
        """Lays out a bank.

        Args:
            protocol: What the boards speak.
            doors: How many doors; None for the total of ``sizes``.
            sizes: The size mix, in numbering order; None for all ``medium``.
            boards: ``(address, channels)`` in numbering order (channels None: a full board);
                None to use as few boards as needed from the protocol's first address.
            locks_per_board: Channels per chosen board (and per bare address in ``boards``);
                None for the protocol's maximum.

        Raises:
            LayoutError: no door count at all, fewer than 1 door, a mix that does not add up
                to ``doors``, a board the protocol cannot have, or more doors than the boards
                hold.
        """
        limits = BoardLimits.of(protocol)
        if doors is None and sizes is None:
            raise LayoutError("give the number of doors, the size mix, or both")
        if doors is None:
            doors = sum(count for _, count in sizes or ())
        if doors < 1:
            raise LayoutError(f"a bank needs at least 1 door, got {doors}")
        if sizes is None:
            sizes = ((Size.MEDIUM, doors),)
        elif sum(count for _, count in sizes) != doors:
            mix = ",".join(f"{size.value}={count}" for size, count in sizes)
            total = sum(count for _, count in sizes)
            raise LayoutError(f"the size mix {mix} adds up to {total} doors, not {doors}")
        per_board = limits.max_locks if locks_per_board is None else locks_per_board
        if not 1 <= per_board <= limits.max_locks:
            raise LayoutError(
                f"{limits.name} boards have 1-{limits.max_locks} locks, not {per_board}"
            )
        if boards is None:
            if doors > limits.max_doors(per_board):
                raise LayoutError(
                    f"{doors} doors do not fit on {limits.name} boards: at most "
                    f"{limits.max_doors(per_board)} ({len(limits.addresses)} boards of "
                    f"{per_board} locks)"
                )
            # Full boards, the last one holding what is left.
            counts = [min(per_board, doors - first) for first in range(0, doors, per_board)]
            chosen = tuple(zip(limits.addresses, counts, strict=False))
        else:
            chosen = _check_boards(limits, boards, per_board, doors)
        return cls(protocol, chosen, _number_doors(chosen, sizes))

    def door(self, number: int) -> BankDoor:
        """The door numbered ``number``.

        Raises:
            LayoutError: no such door.
        """
        if not 1 <= number <= len(self.doors):
            raise LayoutError(f"no door {number}; doors are 1-{len(self.doors)}")
        return self.doors[number - 1]

    @property
    def limits(self) -> BoardLimits:
        """What the protocol's bus can hold."""
        return BoardLimits.of(self.protocol)

    def doors_per_board(self) -> dict[int, int]:
        """Board address to the number of doors on it, for boards with doors, in order."""
        counts: dict[int, int] = {}
        for door in self.doors:
            counts[door.board] = counts.get(door.board, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: doors, sizes and boards, as the console prints it on start."""
        mix = ", ".join(
            f"{sum(1 for d in self.doors if d.size is size)} {size.value}"
            for size in dict.fromkeys(d.size for d in self.doors)
        )
        boards = ", ".join(f"{address} ({locks} locks)" for address, locks in self.boards)
        plural = "board" if len(self.boards) == 1 else "boards"
        return f"{len(self.doors)} doors ({mix}) on {self.limits.name} {plural} {boards}"

    def kiosk_config(
        self, port: str, scanner_port: str, *, lock_bit_polarity: LockBitPolarity | None = None
    ) -> dict[str, Any]:
        """The kiosk's ``doors`` and ``scanner`` tables for this bank, as parsed dictionaries.

        ``result["doors"]`` is what `kiosk.hardware.parse_door_bank_config` reads.

        Args:
            port: The boards' device path.
            scanner_port: The scanner's device path.
            lock_bit_polarity: Kerong: the boards' polarity, when not the kiosk's default.
        """
        boards = [{"address": a, "locks": n} for a, n in self.doors_per_board().items()]
        serial: dict[str, Any] = {"port": port, "protocol": self.protocol.value}
        if lock_bit_polarity is not None:
            serial["lock_bit_polarity"] = lock_bit_polarity.value
        serial["boards"] = boards
        return {"doors": {"backend": "serial", "serial": serial}, "scanner": {"port": scanner_port}}

    def sizes(self) -> dict[str, str]:
        """Door number (as a string, as TOML and JSON keys are) to size name."""
        return {str(door.number): door.size.value for door in self.doors}

    def kiosk_toml(
        self, port: str, scanner_port: str, *, lock_bit_polarity: LockBitPolarity | None = None
    ) -> str:
        """`kiosk_config` as TOML to paste into the kiosk's configuration file.

        A comment table above it maps door ranges to sizes and (board, lock), since the kiosk's
        ``[doors]`` table has no place for sizes (those are registered with the cloud).
        """
        config = self.kiosk_config(port, scanner_port, lock_bit_polarity=lock_bit_polarity)
        serial = config["doors"]["serial"]
        boards = ", ".join(
            f"{{ address = {b['address']}, locks = {b['locks']} }}" for b in serial["boards"]
        )
        polarity = [
            f"lock_bit_polarity = {_toml_string(serial[key])}"
            for key in ("lock_bit_polarity",)
            if key in serial
        ]
        lines = [f"# locker-sim bank: {self.summary()}", "#"]
        lines += [f"# {row}".rstrip() for row in _range_table(self.doors)]
        lines += [
            "[doors]",
            'backend = "serial"',
            "",
            "[doors.serial]",
            f"port = {_toml_string(port)}",
            f"protocol = {_toml_string(self.protocol.value)}",
            *polarity,
            f"boards = [{boards}]",
            "",
            "[scanner]",
            f"port = {_toml_string(scanner_port)}",
        ]
        return "\n".join(lines) + "\n"


def _check_boards(
    limits: BoardLimits,
    boards: Sequence[tuple[int, int | None]],
    per_board: int,
    doors: int,
) -> tuple[tuple[int, int], ...]:
    if not boards:
        raise LayoutError("the board list is empty")
    checked: list[tuple[int, int]] = []
    for address, locks in boards:
        if address not in limits.addresses:
            raise LayoutError(
                f"{limits.name} board addresses are "
                f"{limits.first_address}-{limits.last_address}, not {address}"
            )
        if any(address == seen for seen, _ in checked):
            raise LayoutError(f"board {address} appears twice in the board list")
        locks = per_board if locks is None else locks
        if not 1 <= locks <= limits.max_locks:
            raise LayoutError(
                f"board {address}: {limits.name} boards have 1-{limits.max_locks} locks, "
                f"not {locks}"
            )
        checked.append((address, locks))
    room = sum(locks for _, locks in checked)
    if room < doors:
        raise LayoutError(f"the boards have {room} locks in all, too few for {doors} doors")
    return tuple(checked)


def _number_doors(
    boards: Sequence[tuple[int, int]], sizes: Sequence[tuple[Size, int]]
) -> tuple[BankDoor, ...]:
    locks = ((address, lock) for address, count in boards for lock in range(1, count + 1))
    in_order = (size for size, count in sizes for _ in range(count))
    return tuple(
        BankDoor(number, size, address, lock)
        for number, (size, (address, lock)) in enumerate(zip(in_order, locks, strict=False), 1)
    )


def _range_table(doors: Iterable[BankDoor]) -> list[str]:
    """Rows of ``doors size board locks``, one per run of doors sharing a size and a board."""
    rows = [f"{'doors':<10}{'size':<8}{'board':<7}locks"]
    for (size, board), run in itertools.groupby(doors, key=lambda d: (d.size, d.board)):
        group = list(run)
        numbers = _span(group[0].number, group[-1].number)
        locks = _span(group[0].lock, group[-1].lock)
        rows.append(f"{numbers:<10}{size.value:<8}{board:<7}{locks}")
    return rows


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _parts(text: str, what: str) -> list[str]:
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise LayoutError(f"the {what} is empty")
    if not all(parts):
        raise LayoutError(f"the {what} {text!r} has an empty part")
    return parts


def _whole_number(text: str, what: str, *, minimum: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise LayoutError(f"{what} must be a whole number, got {text.strip()!r}") from None
    if value < minimum:
        raise LayoutError(f"{what} must be at least {minimum}, got {value}")
    return value


def _toml_string(text: str) -> str:
    # A JSON string (ASCII only, escapes \" \\ \n \uXXXX) is also a valid TOML basic string.
    return json.dumps(text)
