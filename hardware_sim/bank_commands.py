"""The field tech's commands for a simulated bank: ``doors``, ``open 3``, ``jam 2``, ``scan X``...

One line is one command. `BankCommands.prepare` checks a line against the bank's layout and
returns an action, or raises `CommandError` with a one-line message; running the action changes
the simulation and returns the text to print. Checking apart from running lets the console refuse
a startup script with a typo before it serves anything, rather than half-way through.

Doors are named by kiosk number (``3``), range (``1-4``), list (``1,3,5-8``) or ``all``; board
commands take an optional board address and otherwise act on every board.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hardware_sim.bank import DoorStatus, SimulatedBank
from hardware_sim.bank_layout import LayoutError
from hardware_sim.lock_board import SimulatedLockBoard
from kiosk.hardware.protocols.kerong import LockBitPolarity

Action = Callable[[], str]
"""A checked command, ready to run; returns what to print."""


class CommandError(ValueError):
    """A command that cannot be run: unknown, or with bad arguments. The message says which."""


class Quit(Exception):
    """Raised by the ``quit`` action: the console should stop."""


@dataclass(frozen=True, slots=True)
class Command:
    """One console command.

    Attributes:
        name: What the tech types.
        usage: Its arguments, as ``help`` shows them.
        summary: What it does, in a few words.
        prepare: Checks the arguments (the words after the name, and the rest of the line as
            typed) and returns the action.
        aliases: Other names for it.
    """

    name: str
    usage: str
    summary: str
    prepare: Callable[[BankCommands, list[str], str], Action]
    aliases: tuple[str, ...] = ()


class BankCommands:
    """Console commands bound to one bank.

    Args:
        bank: The simulated bank.
        port: The lock boards' path as the kiosk should use it (the pseudo-terminal, or a link).
        scanner_port: The scanner's path, likewise.
        lock_bit_polarity: Kerong: the polarity to put in the kiosk configuration, if not the
            kiosk's default.
    """

    def __init__(
        self,
        bank: SimulatedBank,
        port: str,
        scanner_port: str,
        *,
        lock_bit_polarity: LockBitPolarity | None = None,
    ) -> None:
        self.bank = bank
        self.port = port
        self.scanner_port = scanner_port
        self.lock_bit_polarity = lock_bit_polarity
        self._by_name = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}

    def prepare(self, line: str) -> Action | None:
        """Checks one line; None for a blank line or a ``#`` comment.

        Raises:
            CommandError: unknown command or bad arguments.
        """
        words = line.split()
        if not words or words[0].startswith("#"):
            return None
        command = self._by_name.get(words[0].lower())
        if command is None:
            raise CommandError(f"unknown command {words[0]!r}; 'help' lists the commands")
        rest = line.strip()[len(words[0]) :].strip()
        try:
            return command.prepare(self, words[1:], rest)
        except (LayoutError, ValueError) as error:
            raise CommandError(f"{command.name}: {error} (usage: {_usage(command)})") from None

    def run(self, line: str) -> str | None:
        """Checks and runs one line; returns what to print (None for a blank line).

        Raises:
            CommandError: unknown command or bad arguments.
            Quit: the line was ``quit``.
        """
        action = self.prepare(line)
        return None if action is None else action()

    # Argument readers, shared by the commands.

    def doors(self, text: str) -> list[int]:
        """Door numbers from ``3``, ``1-4``, ``1,3,5-8`` or ``all``.

        Raises:
            ValueError: not door numbers, or a door the bank does not have.
        """
        count = len(self.bank.layout.doors)
        if text.lower() == "all":
            return list(range(1, count + 1))
        numbers: list[int] = []
        for part in text.split(","):
            first, dash, last = part.partition("-")
            try:
                low, high = int(first), int(last if dash else first)
            except ValueError:
                raise ValueError(f"{part!r} is not a door number or range") from None
            if low > high:
                raise ValueError(f"door range {part!r} runs backwards")
            for number in (low, high):
                self.bank.layout.door(number)  # raises LayoutError naming the valid doors
            numbers.extend(n for n in range(low, high + 1) if n not in numbers)
        return numbers

    def boards(self, args: Sequence[str]) -> list[SimulatedLockBoard]:
        """The board named by ``args`` (one address; callers check the count), or every board
        when ``args`` is empty.

        Raises:
            ValueError: not a board address, or no board has it.
        """
        if not args:
            return [self.bank.board(address) for address, _ in self.bank.layout.boards]
        try:
            address = int(args[0])
        except ValueError:
            raise ValueError(f"{args[0]!r} is not a board address") from None
        return [self.bank.board(address)]

    def help(self, name: str | None = None) -> str:
        """All commands, or one."""
        if name is not None:
            command = self._by_name.get(name.lower())
            if command is None:
                raise ValueError(f"no command {name!r}")
            return f"{_usage(command)}: {command.summary}"
        width = max(len(_usage(c)) for c in COMMANDS) + 2
        rows = [f"  {_usage(c):<{width}}{c.summary}" for c in COMMANDS]
        return "\n".join(["commands:", *rows, *_HELP_NOTES])


def listing_text(statuses: Sequence[DoorStatus]) -> str:
    """The ``doors`` table: one row per door."""
    header = (
        f"{'door':>4}  {'size':<7} {'board:lock':<11} {'state':<7} {'occupied':<9} "
        f"{'jammed':<7} {'pulses':>6}  faults"
    )
    rows = [header]
    for status in statuses:
        door, state = status.door, status.state
        rows.append(
            f"{door.number:>4}  {door.size.value:<7} {f'{door.board}:{door.lock}':<11} "
            f"{'open' if state.is_open else 'locked':<7} {_yes(state.occupied):<9} "
            f"{_yes(state.jammed):<7} {state.pulses:>6}  {', '.join(status.faults()) or '-'}"
        )
    return "\n".join(rows)


_HELP_NOTES = (
    "DOORS: a door number (3), a range (1-4), a list (1,3,5-8) or 'all'.",
    "BOARD: a board address; without it, board commands act on every board.",
)


def _usage(command: Command) -> str:
    names = " | ".join((command.name, *command.aliases))
    return f"{names} {command.usage}".strip()


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _span(numbers: Sequence[int]) -> str:
    if len(numbers) == 1:
        return f"door {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"doors {numbers[0]}-{numbers[-1]}"
    return "doors " + ",".join(map(str, numbers))


def _json_flag(args: list[str]) -> bool:
    if args not in ([], ["json"]):
        raise ValueError(f"the only option is 'json', got {' '.join(args)!r}")
    return bool(args)


def _arity(args: list[str], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low}-{high}"
        raise ValueError(f"expected {expected} argument(s), got {len(args)}")


# Commands. Each prepare function checks its arguments and returns the action.


def _door_command(
    verb: str, act: Callable[[SimulatedBank, int], None]
) -> Callable[[BankCommands, list[str], str], Action]:
    """A command that takes DOORS and does the same to each."""

    def prepare(commands: BankCommands, args: list[str], _rest: str) -> Action:
        _arity(args, 1, 1)
        numbers = commands.doors(args[0])

        def action() -> str:
            for number in numbers:
                act(commands.bank, number)
            return f"{_span(numbers)}: {verb}"

        return action

    return prepare


def _kill_solenoid(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 1, 2)
    if args[1:] not in ([], ["off"]):
        raise ValueError(f"expected 'off' or nothing after the doors, got {args[1]!r}")
    numbers, dead = commands.doors(args[0]), len(args) == 1

    def action() -> str:
        for number in numbers:
            commands.bank.door(number).kill_solenoid(dead)
        return f"{_span(numbers)}: solenoid {'dead' if dead else 'working'}"

    return action


_STUCK = {"open": True, "closed": False, "off": None}


def _stick_sensor(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 2, 2)
    if args[1] not in _STUCK:
        raise ValueError(f"the sensor sticks 'open' or 'closed' (or 'off'), not {args[1]!r}")
    numbers, reads_open = commands.doors(args[0]), _STUCK[args[1]]

    def action() -> str:
        for number in numbers:
            commands.bank.door(number).stick_sensor(reads_open)
        what = "working" if reads_open is None else f"stuck {args[1]}"
        return f"{_span(numbers)}: sensor {what}"

    return action


def _pulse(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 1, 1)
    numbers = commands.doors(args[0])

    def action() -> str:
        unpowered = []
        for number in numbers:
            if commands.bank.board(commands.bank.layout.door(number).board).powered:
                commands.bank.door(number).pulse()
            else:
                unpowered.append(number)
        if not unpowered:
            return f"{_span(numbers)}: pulsed"
        if unpowered == numbers:
            return f"{_span(numbers)}: not pulsed (board off)"
        return f"{_span(numbers)}: pulsed, except {_span(unpowered)} (board off)"

    return action


def _hex_bytes(text: str) -> bytes:
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"expected bytes in hex such as '8A 01 FF', got {text!r}") from None
    if not data:
        raise ValueError("expected at least one byte in hex, such as '8A 01 FF'")
    return data


def _garbage(commands: BankCommands, args: list[str], rest: str) -> Action:
    data = _hex_bytes(rest)

    def action() -> str:
        commands.bank.bus.inject_garbage(data)
        return f"{len(data)} byte(s) of garbage on the bus: {data.hex(' ')}"

    return action


def _noise(commands: BankCommands, args: list[str], rest: str) -> Action:
    data = b"" if rest.lower() == "off" else _hex_bytes(rest)

    def action() -> str:
        commands.bank.bus.noise_before_replies = data
        return f"noise before every reply: {data.hex(' ')}" if data else "noise off"

    return action


def _repair(bank: SimulatedBank, number: int) -> None:
    door = bank.door(number)
    door.jam(False)
    door.kill_solenoid(False)
    door.stick_sensor(None)


def _board_command(
    commands: BankCommands,
    board_args: list[str],
    act: Callable[[SimulatedLockBoard], None],
    verb: str,
) -> Action:
    boards = commands.boards(board_args)

    def action() -> str:
        for board in boards:
            act(board)
        plural = "board" if len(boards) == 1 else "boards"
        return f"{plural} {', '.join(str(b.address) for b in boards)}: {verb}"

    return action


def _power(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 1, 2)
    if args[0] not in ("on", "off"):
        raise ValueError(f"expected 'on' or 'off', got {args[0]!r}")
    on = args[0] == "on"

    def act(board: SimulatedLockBoard) -> None:
        if on:
            board.power_on()
        else:
            board.power_off()

    return _board_command(commands, args[1:], act, f"power {args[0]}")


def _mute(muted: bool) -> Callable[[BankCommands, list[str], str], Action]:
    def prepare(commands: BankCommands, args: list[str], _rest: str) -> Action:
        _arity(args, 0, 1)
        verb = "muted (acting on requests, never answering)" if muted else "answering"
        return _board_command(commands, args, lambda board: board.mute(muted), verb)

    return prepare


def _corrupt(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 1, 2)
    how = args[0]
    if how in ("on", "off"):
        always, next_n, verb = how == "on", 0, f"corrupt replies {how}"
    else:
        try:
            always, next_n = False, int(how)
        except ValueError:
            raise ValueError(f"expected 'on', 'off' or a number of replies, got {how!r}") from None
        if next_n < 1:
            raise ValueError(f"the number of replies must be at least 1, got {next_n}")
        verb = f"the next {next_n} replies corrupt"

    def act(board: SimulatedLockBoard) -> None:
        board.corrupt_replies(always=always, next_n=next_n)

    return _board_command(commands, args[1:], act, verb)


def _delay(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 1, 2)
    try:
        seconds = float(args[0])
    except ValueError:
        raise ValueError(f"{args[0]!r} is not a number of seconds") from None
    if not 0 <= seconds <= 60:
        raise ValueError(f"the delay must be 0-60 seconds, got {args[0]}")

    def act(board: SimulatedLockBoard) -> None:
        board.reply_delay_s = seconds

    return _board_command(commands, args[1:], act, f"replies {seconds:g} s late")


def _scan(commands: BankCommands, args: list[str], rest: str) -> Action:
    # The code is the rest of the line as typed: QR codes may hold spaces.
    if not rest or not rest.isascii():
        raise ValueError("expected an ASCII code to scan")

    def action() -> str:
        commands.bank.scanner.scan(rest)
        return f"scanned {rest!r}"

    return action


def _doors_listing(commands: BankCommands, args: list[str], _rest: str) -> Action:
    if _json_flag(args):
        return lambda: json.dumps(commands.bank.as_json())
    return lambda: listing_text(commands.bank.listing())


def _boards_listing(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 0, 0)

    def action() -> str:
        rows = [f"{'board':>5}  {'locks':>5}  faults"]
        rows += [
            f"{s.address:>5}  {s.locks:>5}  {', '.join(s.faults()) or '-'}"
            for s in commands.bank.boards()
        ]
        noise = commands.bank.bus.noise_before_replies
        if noise:
            rows.append(f"bus: noise before every reply: {noise.hex(' ')}")
        return "\n".join(rows)

    return action


def _config(commands: BankCommands, args: list[str], _rest: str) -> Action:
    layout, ports = commands.bank.layout, (commands.port, commands.scanner_port)
    polarity = commands.lock_bit_polarity
    if _json_flag(args):
        config = layout.kiosk_config(*ports, lock_bit_polarity=polarity)
        text = json.dumps(config | {"sizes": layout.sizes()})
    else:
        text = layout.kiosk_toml(*ports, lock_bit_polarity=polarity).rstrip("\n")
    return lambda: text


def _help(commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 0, 1)
    text = commands.help(args[0] if args else None)
    return lambda: text


def _quit(_commands: BankCommands, args: list[str], _rest: str) -> Action:
    _arity(args, 0, 0)

    def action() -> str:
        raise Quit

    return action


COMMANDS: tuple[Command, ...] = (
    Command("help", "[COMMAND]", "this list, or one command", _help),
    Command(
        "doors",
        "[json]",
        "every door: size, board:lock, locked/open, occupied, jammed, faults",
        _doors_listing,
        ("list",),
    ),
    Command("boards", "", "every board and its faults", _boards_listing),
    Command("config", "[json]", "the kiosk configuration for this bank again", _config),
    Command(
        "open",
        "DOORS",
        "a person opens the door by hand (no pulse: the kiosk sees a tamper)",
        _door_command("opened by hand", lambda bank, n: bank.door(n).force_open()),
    ),
    Command(
        "pulse",
        "DOORS",
        "the solenoid is pulsed, as on an unlock: the door springs open unless jammed",
        _pulse,
    ),
    Command(
        "close",
        "DOORS",
        "a person pushes the door shut; the latch catches it",
        _door_command("closed", lambda bank, n: bank.door(n).close()),
    ),
    Command(
        "jam",
        "DOORS",
        "the door stays shut when pulsed",
        _door_command("jammed", lambda bank, n: bank.door(n).jam()),
    ),
    Command(
        "unjam",
        "DOORS",
        "undo jam",
        _door_command("no longer jammed", lambda bank, n: bank.door(n).jam(False)),
    ),
    Command(
        "kill-solenoid",
        "DOORS [off]",
        "pulses do nothing (off: the solenoid works)",
        _kill_solenoid,
    ),
    Command(
        "stick-sensor",
        "DOORS open|closed|off",
        "the sensor reads a fixed value (off: it works)",
        _stick_sensor,
    ),
    Command(
        "repair",
        "DOORS",
        "clear jam, dead solenoid and stuck sensor",
        _door_command("repaired", _repair),
    ),
    Command(
        "put",
        "DOORS",
        "something in the compartment (Kerong reports it on its IR bits)",
        _door_command("occupied", lambda bank, n: bank.door(n).set_occupied(True)),
    ),
    Command(
        "take",
        "DOORS",
        "the compartment emptied",
        _door_command("empty", lambda bank, n: bank.door(n).set_occupied(False)),
    ),
    Command("power", "on|off [BOARD]", "power loss: silent, pulses nothing", _power),
    Command("mute", "[BOARD]", "acts on requests but never answers", _mute(True)),
    Command("unmute", "[BOARD]", "undo mute", _mute(False)),
    Command("corrupt", "on|off|N [BOARD]", "replies with a bad checksum (N: the next N)", _corrupt),
    Command("delay", "SECONDS [BOARD]", "answer late (0: on time)", _delay),
    Command("garbage", "HEX", "these bytes on the bus now, as line noise", _garbage),
    Command("noise", "HEX|off", "these bytes on the bus before every reply", _noise),
    Command("scan", "CODE", "the scanner reads CODE and sends it to the kiosk", _scan),
    Command("quit", "", "stop the simulator", _quit, ("exit",)),
)
"""Every command, in the order ``help`` lists them."""
