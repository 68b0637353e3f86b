"""A field tech's console for the simulators: ``python -m hardware_sim``.

``lock-board`` serves simulated boards on a pseudo-terminal and prints its path (point the kiosk's
``doors.serial.port`` at it), then reads fault-injection commands from stdin. ``scanner`` serves a
simulated scanner and sends every line typed on stdin as a scanned code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from hardware_sim.lock_board import LockBoardSimulator
from hardware_sim.scanner import SimulatedScanner
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.protocols.kerong import LockBitPolarity

HELP = """commands (B = board address, L = lock):
  status                      every door: open/shut, sensor, occupied, pulses
  open B L | close B L        force a door open (tamper) or push it shut
  jam B L [off]               the door stays shut when pulsed
  kill B L [off]              dead solenoid: pulses do nothing
  stick B L open|shut|off     the sensor reads a fixed value
  parcel B L [off]            something in the compartment (Kerong IR)
  power B on|off              power loss: silent, pulses nothing
  mute B [off]                acts on requests, never answers
  corrupt B N|always|off      replies with a bad checksum
  delay B SECONDS             answer late
  quit"""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the console; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "scanner":
        with SimulatedScanner(
            terminator=args.terminator.encode().decode("unicode_escape").encode()
        ) as scanner:
            print(f"scanner on {scanner.path}; type codes, one per line", flush=True)
            for line in sys.stdin:
                if line.strip():
                    scanner.scan(line.strip())
        return 0
    boards = dict(args.board or [(1, 16)])
    with LockBoardSimulator(
        BoardProtocol.parse(args.protocol),
        boards,
        spring_delay_s=args.spring_delay,
        lock_bit_polarity=LockBitPolarity.parse(args.polarity),
        answers_unlock=not args.silent_unlock,
    ) as sim:
        print(f"{args.protocol} boards {sorted(boards)} on {sim.path}; 'help' for commands")
        run_commands(sim, sys.stdin, sys.stdout)
    return 0


def run_commands(sim: LockBoardSimulator, lines: Iterable[str], out: TextIO) -> None:
    """Applies console commands to ``sim`` until ``quit`` or the end of ``lines``."""
    for line in lines:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            return
        try:
            print(_apply(sim, words), file=out, flush=True)
        except (ValueError, IndexError, KeyError) as error:
            print(f"error: {error}; 'help' lists commands", file=out, flush=True)


def _apply(sim: LockBoardSimulator, words: list[str]) -> str:
    command, args = words[0], words[1:]
    if command == "help":
        return HELP
    if command == "status":
        return _status(sim)
    if command not in _DOOR_COMMANDS | _BOARD_COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    if not args:
        raise ValueError(f"{command} needs a board address")
    board = sim.board(int(args[0]))
    off = args[-1:] == ["off"]
    door_commands: dict[str, Callable[[], None]] = {}
    if command in _DOOR_COMMANDS:
        door = board.door(int(args[1]))
        stuck = {"open": True, "shut": False, "off": None}
        door_commands = {
            "open": door.force_open,
            "close": door.close,
            "jam": lambda: door.jam(not off),
            "kill": lambda: door.kill_solenoid(not off),
            "stick": lambda: door.stick_sensor(stuck[args[2]]),
            "parcel": lambda: door.set_occupied(not off),
        }
    board_commands: dict[str, Callable[[], None]] = {
        "power": board.power_on if args[1:] == ["on"] else board.power_off,
        "mute": lambda: board.mute(not off),
        "corrupt": lambda: _corrupt(sim, board.address, args[1]),
        "delay": lambda: setattr(board, "reply_delay_s", float(args[1])),
    }
    (door_commands | board_commands)[command]()
    return "ok"


_DOOR_COMMANDS = frozenset({"open", "close", "jam", "kill", "stick", "parcel"})
_BOARD_COMMANDS = frozenset({"power", "mute", "corrupt", "delay"})


def _corrupt(sim: LockBoardSimulator, address: int, how: str) -> None:
    board = sim.board(address)
    if how == "always":
        board.corrupt_replies(always=True)
    elif how == "off":
        board.corrupt_replies(always=False, next_n=0)
    else:
        board.corrupt_replies(next_n=int(how))


def _status(sim: LockBoardSimulator) -> str:
    rows = []
    for address, board in sim.boards.items():
        state = "powered" if board.powered else "NO POWER"
        rows.append(f"board {address} ({state})")
        for lock, door in board.doors.items():
            rows.append(
                f"  lock {lock:2}: {'OPEN' if door.is_open else 'shut'}"
                f"  sensor {'open' if door.sensor_reads_open() else 'shut'}"
                f"  {'occupied' if door.occupied else 'empty'}  pulses {door.pulses}"
            )
    return "\n".join(rows)


def _board(text: str) -> tuple[int, int]:
    address, _, locks = text.partition(":")
    try:
        return int(address), int(locks or 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:LOCKS, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hardware_sim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    board = commands.add_parser("lock-board", help="simulated lock boards on a pseudo-terminal")
    board.add_argument("--protocol", default="8a80", help="8a80 or kerong (default 8a80)")
    board.add_argument(
        "--board", type=_board, action="append", help="ADDRESS:LOCKS, repeatable (default 1:16)"
    )
    board.add_argument("--spring-delay", type=float, default=0.1, help="seconds (default 0.1)")
    board.add_argument("--polarity", default="set_means_locked", help="Kerong lock-bit polarity")
    board.add_argument(
        "--silent-unlock", action="store_true", help="Kerong: do not answer unlock commands"
    )
    scanner = commands.add_parser("scanner", help="a simulated barcode scanner")
    scanner.add_argument("--terminator", default="\\r", help="\\r, \\n or \\r\\n (default \\r)")
    return parser
