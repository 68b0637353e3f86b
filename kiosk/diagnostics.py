"""Field diagnostics of a lock-board bank, on the real port, with the daemon stopped.

What a field tech needs to test a bank without the kiosk software in the way: which board
addresses answer on the bus (`scan_bus`), what every lock and sensor reads now (`read_doors`),
whether a door opens when pulsed (`pulse_doors`), and the door map the configuration describes
(`door_map_rows`). `locker-kiosk` prints them (``bus-scan``, ``read-doors``, ``pulse``,
``door-map``, ``diagnostics``; see ``kiosk/field_tools.py``).

The port is opened for exclusive use, as the daemon opens it, so a running daemon makes every
command here fail with `PortHeld` instead of two programs talking over each other on one bus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kiosk.hardware.door_bank import DoorState, UnlockResult
from kiosk.hardware.errors import LockBoardError, PortError
from kiosk.hardware.serial_board import SerialBankConfig, SerialBoardBank
from kiosk.hardware.serial_link import SerialLink
from shared.sizes import Size

SCAN_TIMEOUT_S = 0.15
"""How long a bus scan waits for each address (a board answers in a few milliseconds)."""

STABLE_PORT_PREFIXES = ("/dev/serial/by-id/", "/dev/serial/by-path/")
_UNSTABLE_PORT = re.compile(r"^/dev/tty(USB|ACM|AMA|S)\d+$")


class PortHeld(PortError):
    """Another program (the kiosk daemon, normally) holds the bus's port."""


def unstable_port_warning(port: str) -> str | None:
    """A warning for a port path that can change between boots, or None.

    ``/dev/ttyUSB0`` is whichever adapter the kernel enumerated first: after a reboot, or with a
    second adapter (a scanner), it may be another device. ``/dev/serial/by-id/...`` names the
    adapter itself.
    """
    if port.startswith(STABLE_PORT_PREFIXES) or not _UNSTABLE_PORT.match(port):
        return None
    return (
        f"warning: doors.serial.port {port} can name another device after a reboot or with a "
        "second USB adapter; use its /dev/serial/by-id/... link (ls -l /dev/serial/by-id/)"
    )


def _held(error: PortError, port: str) -> PortError:
    # pyserial's exclusive open fails with "Could not exclusively lock port" when another
    # process has it; anything else (a missing device, permissions) is reported as it is.
    if "exclusively lock" in str(error) or "Resource temporarily unavailable" in str(error):
        return PortHeld(
            f"{port} is held by another program: stop the kiosk daemon first "
            "(systemctl stop locker-kiosk), then run this again"
        )
    return error


@dataclass(frozen=True, slots=True)
class DoorRow:
    """One door as the configuration maps it: label, board and lock, size and sensors."""

    door: int
    board: int
    lock: int
    size: Size | None
    sensors: str


def door_map_rows(settings: SerialBankConfig, layout: Mapping[int, Size]) -> list[DoorRow]:
    """The door map: every door's board:lock, size and sensors (no hardware is touched)."""
    sensors = "lock + occupancy (IR)" if settings.protocol.name == "kerong" else "lock"
    return [
        DoorRow(door, where.board, where.lock, layout.get(door), sensors)
        for door, where in settings.door_map.addresses()
    ]


async def scan_bus(settings: SerialBankConfig, *, timeout_s: float = SCAN_TIMEOUT_S) -> list[int]:
    """Asks every address the protocol allows for its status; returns those that answered.

    Raises:
        PortHeld: the daemon (or another program) holds the port.
        PortError: the port cannot be used.
    """
    protocol = settings.protocol
    link = SerialLink(
        settings.port, settings.effective_baudrate, request_timeout_s=timeout_s, retries=0
    )
    dialect = protocol.dialect(link, settings)
    found: list[int] = []
    try:
        for address in range(protocol.first_board, protocol.last_board + 1):
            try:
                await dialect.read_board(address, (1,))
            except PortError as error:
                raise _held(error, settings.port) from None
            except LockBoardError:
                continue  # nobody at this address
            found.append(address)
    finally:
        await link.aclose()
    return found


def open_bank(settings: SerialBankConfig) -> SerialBoardBank:
    """The configured bank, for `read_doors` and `pulse_doors` (close it with ``aclose``)."""
    return SerialBoardBank(settings)


async def read_doors(bank: SerialBoardBank) -> dict[int, DoorState]:
    """Every door's lock and occupancy reading.

    Raises:
        PortHeld: the daemon holds the port.
        LockBoardError: a board did not answer.
    """
    try:
        return await bank.read_states()
    except PortError as error:
        raise _held(error, bank.config.port) from None


async def pulse_doors(bank: SerialBoardBank, doors: Sequence[int]) -> list[UnlockResult | str]:
    """Pulses each door in turn; each result is the unlock's, or the error that stopped it.

    Raises:
        PortHeld: the daemon holds the port (before any pulse).
    """
    results: list[UnlockResult | str] = []
    for door in doors:
        try:
            results.append(await bank.unlock(door))
        except PortError as error:
            held = _held(error, bank.config.port)
            if isinstance(held, PortHeld):
                raise held from None
            results.append(f"{type(error).__name__}: {error}")
        except LockBoardError as error:
            results.append(f"{type(error).__name__}: {error}")
    return results
