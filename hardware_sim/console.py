"""``locker-sim`` (also ``python -m hardware_sim``): the field tech's hardware simulator.

``locker-sim bank`` starts a simulated location: N doors of a size mix on as many simulated
lock boards as they need (one pseudo-terminal, the RS-485 bus) and a simulated barcode scanner
(another pseudo-terminal). It prints both paths and the kiosk configuration that drives them,
then takes commands (``help`` lists them) from the keyboard, or from stdin when that is not a
terminal, after any given with ``--run`` or ``--script``; with ``--view``, a full-screen
view of the doors takes the place of the prompt (`hardware_sim.view`). ``quit``, end of input,
Ctrl-C and SIGTERM all stop it cleanly with status 0; bad arguments stop it before it starts,
with one line on stderr and status 2; a simulator that cannot start (no pseudo-terminal to be
had) stops with one line and status 1.

``locker-sim scanner`` serves only a scanner and sends each line typed on stdin as a code.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from hardware_sim.bank import SimulatedBank
from hardware_sim.bank_commands import Action, BankCommands, CommandError, Quit
from hardware_sim.bank_layout import BankLayout, LayoutError, parse_board_list, parse_size_mix
from hardware_sim.files import DeviceLink, StateFile
from hardware_sim.lock_board import SIMULATED_PROTOCOLS
from hardware_sim.scanner import SimulatedScanner
from kiosk.hardware.protocols import BoardProtocol, protocol_named
from kiosk.hardware.protocols.kerong import LockBitPolarity

USAGE_ERROR = 2
"""Exit status for bad arguments, as argparse uses."""

START_FAILED = 1
"""Exit status when the simulator cannot start (no pseudo-terminal to be had)."""

OUTPUT_CLOSED = 1
"""Exit status when whatever reads the simulator's output closes it."""

CONFIG_BEGIN = "# ---- kiosk configuration: paste into the kiosk's config file ----"
CONFIG_END = "# ---- end of kiosk configuration ----"

PROMPT = "sim> "

_TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "\\r": b"\r", "\\n": b"\n"}
_TERMINATORS["\\r\\n"] = b"\r\n"


class _UsageError(Exception):
    """A bad argument found after parsing (a path that cannot be used, a bad startup command)."""


class _StartFailed(Exception):
    """The simulator cannot start for a reason that is not the arguments' fault."""


class _Stopped(Exception):
    """SIGTERM arrived: stop as on Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where help is.

    argparse's own error prints the whole usage first, which for ``bank`` is a screenful that
    pushes the one line that matters out of sight.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``locker-sim``; returns the exit status (argparse exits 2 itself on bad options)."""
    logging.basicConfig(level=logging.WARNING, format="locker-sim: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    with _stop_on_sigterm():
        try:
            if args.command == "scanner":
                return _run_scanner(args)
            return _run_bank(args)
        except (KeyboardInterrupt, _Stopped):
            return 0
        except _StartFailed as error:
            print(f"locker-sim {args.command}: error: {error}", file=sys.stderr, flush=True)
            return START_FAILED
        except BrokenPipeError:
            # Whatever read the output has gone (``locker-sim bank | head``): the simulator has
            # been cleaned up on the way here; stop without a traceback, and keep Python's
            # final flush of stdout from failing again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return OUTPUT_CLOSED


def build_parser() -> argparse.ArgumentParser:
    """The ``locker-sim`` argument parser (also read by the test that checks the docs)."""
    parser = _Parser(
        prog="locker-sim",
        description="Simulated lock boards, doors and scanner on pseudo-terminals.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bank = commands.add_parser(
        "bank",
        help="a simulated bank of doors and a scanner",
        description="Start a simulated bank of doors on lock boards, and a scanner; print the "
        "kiosk configuration for them; then take commands ('help' lists them).",
    )
    bank.set_defaults(parser=bank)
    layout = bank.add_argument_group("doors and boards")
    layout.add_argument("--doors", type=int, metavar="N", help="number of doors (default: the mix)")
    layout.add_argument(
        "--sizes",
        type=_from(parse_size_mix),
        metavar="MIX",
        help="size mix in numbering order, e.g. small=8,medium=6,large=4,xlarge=2 "
        "(default: every door medium)",
    )
    layout.add_argument(
        "--protocol",
        type=str.lower,
        choices=SIMULATED_PROTOCOLS,
        default=BoardProtocol.EIGHT_A.value,
        help="what the boards speak (default 8a80)",
    )
    layout.add_argument(
        "--boards",
        type=_from(parse_board_list),
        metavar="LIST",
        help="boards in numbering order as ADDRESS:LOCKS,... (default: as few as needed, "
        "from the first address)",
    )
    layout.add_argument(
        "--locks-per-board",
        type=int,
        metavar="N",
        help="channels per board (default: 50 for 8a80, 16 for kerong)",
    )
    physics = bank.add_argument_group("hardware behaviour")
    physics.add_argument(
        "--spring-delay",
        type=_non_negative,
        default=0.1,
        metavar="SECONDS",
        help="from a pulse to the door reading open (default 0.1)",
    )
    physics.add_argument(
        "--polarity",
        choices=[p.value for p in LockBitPolarity],
        help="Kerong: what a set lock bit means (default set_means_locked)",
    )
    physics.add_argument(
        "--silent-unlock", action="store_true", help="Kerong: boards do not answer an unlock"
    )
    physics.add_argument(
        "--terminator",
        type=_terminator,
        default=b"\r",
        help="what the scanner sends after a code: cr, lf or crlf (default cr)",
    )
    files = bank.add_argument_group("files")
    files.add_argument(
        "--port-link", type=Path, metavar="PATH", help="a symbolic link to the boards' port"
    )
    files.add_argument(
        "--scanner-link", type=Path, metavar="PATH", help="a symbolic link to the scanner's port"
    )
    files.add_argument(
        "--config-out", type=Path, metavar="FILE", help="also write the kiosk configuration here"
    )
    files.add_argument(
        "--state-file", type=Path, metavar="FILE", help="keep a JSON listing of the doors here"
    )
    script = bank.add_argument_group("commands")
    script.add_argument(
        "--run",
        dest="startup",
        action="append",
        type=_run_option,
        default=[],
        metavar="COMMANDS",
        help="commands to run at start, separated by ';' (repeatable)",
    )
    script.add_argument(
        "--script",
        dest="startup",
        action="append",
        type=_script_option,
        metavar="FILE",
        help="commands to run at start, one per line (repeatable)",
    )
    script.add_argument(
        "--no-input",
        action="store_true",
        help="read no commands from stdin: serve until Ctrl-C or SIGTERM",
    )
    script.add_argument(
        "--view",
        action="store_true",
        help="a full-screen view of the doors, with actions on keys and buttons, instead of "
        "the command prompt",
    )
    scanner = commands.add_parser(
        "scanner",
        help="only a simulated scanner",
        description="Serve a simulated scanner; each line typed on stdin is sent as a code.",
    )
    scanner.set_defaults(parser=scanner)
    scanner.add_argument(
        "--terminator",
        type=_terminator,
        default=b"\r",
        help="what the scanner sends after a code: cr, lf or crlf (default cr)",
    )
    scanner.add_argument(
        "--link", type=Path, metavar="PATH", help="a symbolic link to the scanner's port"
    )
    return parser


def _run_bank(args: argparse.Namespace) -> int:
    fail: Callable[[str], NoReturn] = args.parser.error  # prints usage and exits 2
    protocol = protocol_named(args.protocol)
    if protocol is not BoardProtocol.KERONG and (args.polarity or args.silent_unlock):
        fail("--polarity and --silent-unlock apply to kerong boards only")
    if args.view and args.no_input:
        fail("--view and --no-input exclude each other")
    if args.view and not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("--view needs a terminal on stdin and stdout")
    try:
        layout = BankLayout.plan(
            protocol,
            doors=args.doors,
            sizes=args.sizes,
            boards=args.boards,
            locks_per_board=args.locks_per_board,
        )
    except LayoutError as error:
        fail(str(error))
    files = {
        option: path
        for option, path in (
            ("--port-link", args.port_link),
            ("--scanner-link", args.scanner_link),
            ("--config-out", args.config_out),
            ("--state-file", args.state_file),
        )
        if path is not None
    }
    _check_distinct(files, fail)
    polarity = LockBitPolarity(args.polarity) if args.polarity else None
    with contextlib.ExitStack() as stack:
        try:
            bank = SimulatedBank(
                layout,
                spring_delay_s=args.spring_delay,
                lock_bit_polarity=polarity or LockBitPolarity.SET_MEANS_LOCKED,
                answers_unlock=not args.silent_unlock,
                scanner_terminator=args.terminator,
            )
        except OSError as error:
            raise _StartFailed(f"cannot open a pseudo-terminal: {_reason(error)}") from None
        stack.callback(bank.stop)
        try:
            port = _link(stack, bank.port, args.port_link)
            scanner_port = _link(stack, bank.scanner_port, args.scanner_link)
            commands = BankCommands(bank, port, scanner_port, lock_bit_polarity=polarity)
            startup = _prepare_startup(commands, args.startup)
            config = layout.kiosk_toml(port, scanner_port, lock_bit_polarity=polarity)
            if args.config_out is not None:
                _write(args.config_out, config, "--config-out")
            if args.state_file is not None:
                state = StateFile(args.state_file, bank.as_json)
                _try(state.write_now, f"--state-file {args.state_file}")
                stack.callback(state.stop)  # stops after the bank is read for the last time
                state.start()
        except _UsageError as error:
            fail(str(error))
        # Nothing is served until every argument has been checked.
        bank.start()
        _say(f"locker-sim bank: {layout.summary()}")
        _say(f"lock boards: {port}" + (f" -> {bank.port}" if port != bank.port else ""))
        _say(f"scanner:     {scanner_port}")
        _say(f"{CONFIG_BEGIN}\n{config.rstrip()}\n{CONFIG_END}")
        try:
            for action in startup:
                _run_action(action)
            if args.no_input:
                _say("serving; Ctrl-C stops")
                _wait_forever()
            elif args.view:
                _run_view(bank, port, scanner_port)
            else:
                _read_commands(commands)
        except Quit:
            pass
        finally:
            # A second Ctrl-C (or a SIGTERM) during shutdown must not leave ptys or links behind.
            with _signals_ignored(signal.SIGINT, signal.SIGTERM):
                stack.close()
    return 0


def _run_view(bank: SimulatedBank, port: str, scanner_port: str) -> None:
    """Runs the full-screen view until the tech quits it (q, Ctrl-C) or SIGTERM."""
    from hardware_sim.view import make_app  # Textual is loaded only for the view

    make_app(bank, port=port, scanner_port=scanner_port, stop_on_sigterm=True).run()


def _check_distinct(files: dict[str, Path], fail: Callable[[str], NoReturn]) -> None:
    """Two options naming one file would overwrite each other: a link replaced by a link."""
    seen: dict[Path, str] = {}
    for option, path in files.items():
        key = Path(os.path.abspath(path))
        if key in seen:
            fail(f"{seen[key]} and {option} name the same file {path}")
        seen[key] = option


def _read_commands(commands: BankCommands) -> None:
    """Runs commands from stdin until ``quit`` or end of input (raises `Quit` for ``quit``)."""
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  # line editing and history for input()
        _say("type 'help' for commands, 'quit' to stop")
    while True:
        if interactive:
            try:
                line = input(PROMPT)
            except EOFError:
                _say("")
                return
        else:
            line = sys.stdin.readline()
            if not line:
                return
        try:
            action = commands.prepare(line)
        except CommandError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            continue
        if action is not None:
            _run_action(action)


def _run_action(action: Action) -> None:
    try:
        said = action()
    except (ValueError, OSError) as error:
        # Checked commands rarely fail when run; when one does, say so and carry on serving.
        print(f"error: {_reason(error)}", file=sys.stderr, flush=True)
    else:
        _say(said)


def _prepare_startup(
    commands: BankCommands, sources: Sequence[list[tuple[str, str]]]
) -> list[Action]:
    actions: list[Action] = []
    for where, line in (entry for source in sources for entry in source):
        try:
            action = commands.prepare(line)
        except CommandError as error:
            raise _UsageError(f"{where}: {error}") from None
        if action is not None:
            actions.append(action)
    return actions


def _link(stack: contextlib.ExitStack, target: str, link: Path | None) -> str:
    if link is None:
        return target
    made = DeviceLink(link, target)
    _try(made.create, f"link {link}")
    stack.callback(made.remove)
    return str(link)


def _write(path: Path, text: str, option: str) -> None:
    _try(lambda: path.write_text(text, encoding="utf-8"), f"{option} {path}")


def _try(step: Callable[[], object], what: str) -> None:
    try:
        step()
    except (OSError, ValueError) as error:
        raise _UsageError(f"{what}: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def _run_scanner(args: argparse.Namespace) -> int:
    fail: Callable[[str], NoReturn] = args.parser.error
    try:
        scanner = SimulatedScanner(terminator=args.terminator)
    except OSError as error:
        raise _StartFailed(f"cannot open a pseudo-terminal: {_reason(error)}") from None
    with contextlib.ExitStack() as stack:
        stack.callback(scanner.stop)
        try:
            port = _link(stack, scanner.path, args.link)
        except _UsageError as error:
            fail(str(error))
        scanner.start()
        try:
            _say(f"scanner: {port}; type codes, one per line")
            for line in sys.stdin:
                code = line.strip()
                if not code:
                    continue
                try:
                    scanner.scan(code)
                except ValueError as error:
                    print(f"error: {error}", file=sys.stderr, flush=True)
                else:
                    _say(f"scanned {code!r}")
        finally:
            with _signals_ignored(signal.SIGINT, signal.SIGTERM):
                stack.close()
    return 0


def _wait_forever() -> None:
    while True:
        signal.pause()  # returns after any handled signal; Ctrl-C and SIGTERM raise


@contextlib.contextmanager
def _signals_ignored(*signals: signal.Signals) -> Iterator[None]:
    previous = [(number, signal.signal(number, signal.SIG_IGN)) for number in signals]
    try:
        yield
    finally:
        for number, handler in previous:
            signal.signal(number, handler)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(text: str) -> None:
    # Flushed line by line: a script or test reads the output through a pipe as it comes.
    print(text, flush=True)


# Argument types: argparse turns their ArgumentTypeError into "argument --x: ..." and status 2.


def _from(parse: Callable[[str], object]) -> Callable[[str], object]:
    def read(text: str) -> object:
        try:
            return parse(text)
        except LayoutError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return read


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"expected 0-60 seconds, got {text}")
    return value


def _terminator(text: str) -> bytes:
    try:
        return _TERMINATORS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected cr, lf or crlf, got {text!r}") from None


def _run_option(text: str) -> list[tuple[str, str]]:
    return [(f"--run command {n}", part) for n, part in enumerate(text.split(";"), 1)]


def _script_option(text: str) -> list[tuple[str, str]]:
    try:
        lines = Path(text).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise argparse.ArgumentTypeError(f"cannot read {text}: {reason}") from None
    return [(f"{text} line {n}", line) for n, line in enumerate(lines, 1)]
