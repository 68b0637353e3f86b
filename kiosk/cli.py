"""``locker-kiosk``: run the kiosk daemon, check its configuration, and look inside its store.

``run`` is what systemd starts. The other commands are for field techs at a running kiosk: they
open the SQLite file read-only (see `kiosk.inspection`), so they never disturb the daemon and do
not need the code secret. Every command and option is documented in ``docs/kiosk.md`` (a test
checks it).

Exit status: 0 on success (and for ``run``, on a clean stop by SIGTERM or SIGINT); 1 when the
kiosk cannot run or the database cannot be read; 2 for bad arguments or a bad configuration. Errors
are one line on stderr: ``locker-kiosk: error: ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from sqlite_utils import Database

from kiosk.config import KioskConfig, KioskConfigError, SyncConfig, bank_doors, load_config
from kiosk.field_tools import FieldToolFailed, add_commands, check_config_lines
from shared.states import AllocationStatus

PROG = "locker-kiosk"
OK, FAILURE, USAGE_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """Errors on one line (argparse's usage block would push the line that matters away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Failed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Parcel-locker kiosk daemon and field tools.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the kiosk daemon until SIGTERM or SIGINT")
    run.add_argument("--config", required=True, type=Path, help="the kiosk's TOML file")
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default INFO)",
    )
    run.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append log lines to PATH (default: stderr; with --ui, stdout, or kiosk.log "
        "beside the database when stdout is the UI's terminal)",
    )
    run.add_argument(
        "--ui", action="store_true", help="also run the touchscreen UI on this terminal"
    )
    run.add_argument(
        "--ui-idle-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds untouched before the UI goes home (default 60)",
    )
    run.add_argument(
        "--staff-pin-env",
        default="LOCKER_KIOSK_STAFF_PIN",
        metavar="NAME",
        help="environment variable holding the staff PIN (default LOCKER_KIOSK_STAFF_PIN)",
    )
    run.set_defaults(handler=_run)

    check = sub.add_parser("check-config", help="validate the configuration and summarise it")
    check.add_argument("--config", required=True, type=Path, help="the kiosk's TOML file")
    check.set_defaults(handler=_check_config)

    def inspection(
        name: str, help_text: str, handler: Callable[..., int]
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        where = command.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", type=Path, help="read the database path from this file")
        where.add_argument("--database", type=Path, help="the kiosk's SQLite file")
        command.add_argument("--json", action="store_true", help="print JSON instead of a table")
        command.set_defaults(handler=handler)
        return command

    inspection("status", "doors, parcel counts, outbox, sync and keypad at a glance", _status)
    parcels = inspection("parcels", "parcels and returns known to the kiosk", _parcels)
    parcels.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in list(AllocationStatus)],
        help="only parcels with this status (repeatable)",
    )
    audit = inspection("audit", "the newest audit log entries", _audit)
    audit.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")
    audit.add_argument("--door", type=_positive_int, help="only entries about this door")
    events = inspection("events", "the newest outbox events for the cloud", _events)
    events.add_argument("--pending", action="store_true", help="only unacknowledged events")
    events.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")
    # Issue 11: field tools on the real port with the daemon stopped, and clearing faults.
    add_commands(sub, _load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``locker-kiosk``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except _Failed as failure:
        print(f"{PROG}: error: {failure}", file=sys.stderr)
        return failure.status
    except FieldToolFailed as failure:
        print(f"{PROG}: error: {failure}", file=sys.stderr)
        return failure.status
    except KeyboardInterrupt:
        return OK
    return status


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if args.ui and args.ui_idle_timeout <= 0:
        raise _Failed(USAGE_ERROR, "--ui-idle-timeout must be positive")
    log_file: Path | None = args.log_file
    if log_file is None and args.ui and sys.stdout.isatty():
        # The touchscreen UI (Textual) draws on the terminal: a log line there would be drawn
        # over the customer's screen.
        log_file = config.database.parent / "kiosk.log"
    if log_file is not None:
        print(f"log lines go to {log_file}", flush=True)
        logging.basicConfig(
            level=args.log_level,
            filename=log_file,
            encoding="utf-8",
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:
        logging.basicConfig(
            level=args.log_level,
            # Textual draws on stderr: with --ui (under systemd, stderr the touchscreen's tty)
            # log lines go to stdout (the journal).
            stream=sys.stdout if args.ui else sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    # The hardware layer is imported here, not at the top: `check-config` and the read-only
    # commands should start fast on a busy kiosk.
    from kiosk.daemon import Daemon, DaemonError

    def ready(message: str) -> None:
        print(message, flush=True)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ui = None
        if args.ui:
            from kiosk.ui.runner import daemon_ui

            pin = os.environ.get(args.staff_pin_env) or None
            ui = daemon_ui(staff_pin=pin, idle_timeout_s=args.ui_idle_timeout, on_quit=stop.set)
        await Daemon(config, ui=ui).run(stop, on_ready=ready)

    try:
        asyncio.run(serve())
    except DaemonError as error:
        raise _Failed(FAILURE, str(error)) from None
    print("stopped", flush=True)
    return OK


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    sizes: dict[str, int] = {}
    for size in config.layout.values():
        sizes[size.value] = sizes.get(size.value, 0) + 1
    mix = ", ".join(f"{count} {size}" for size, count in sizes.items())
    rules = config.rules
    lines = [
        f"configuration {config.source} is valid",
        f"kiosk {config.kiosk_id} at location {config.location_id}",
        f"database: {config.database}",
        f"doors: {len(config.layout)} ({mix}) on a {config.doors.backend} bank"
        f" ({_door_list(bank_doors(config.doors))})",
        "scanner: "
        + ("none" if config.scanner is None else f"{config.scanner.port}")
        + f"; drop-offs scanned as driver {config.scanner_driver_id!r}",
        f"monitor: every {config.monitor.poll_interval_s} s",
        "sync: "
        + (
            "none (no [sync] table)"
            if config.sync is None
            else f"{'mqtts' if config.sync.tls else 'mqtt'}://{config.sync.broker_host}:"
            f"{config.sync.broker_port}, kiosk key {config.sync.private_key_file} read, heartbeat"
            f" every {config.sync.heartbeat_interval_s:g} s" + _broker_identity(config.sync)
        ),
        f"rules: keypad locks after {rules.keypad_max_failures} wrong codes in"
        f" {rules.keypad_window.total_seconds():g} s for {rules.keypad_lockout.total_seconds():g}"
        f" s; left-open alert after {rules.left_open_after.total_seconds():g} s; operations"
        f" abandoned after {rules.abandon_after.total_seconds():g} s",
    ]
    lines += check_config_lines(config)  # issue 11: an unstable port path, the door map
    print("\n".join(lines))
    return OK


def _status(args: argparse.Namespace) -> int:
    from kiosk import inspection

    with _read_only(args) as db:
        view = inspection.status(db, datetime.now(UTC))
    if args.json:
        return _print_json(view)
    keypad = view["keypad"]
    box = view["outbox"]
    counts = ", ".join(f"{n} {s}" for s, n in view["parcels"].items()) or "none"
    lines = [
        f"kiosk {view['kiosk_id']} at location {view['location_id']}",
        f"last cloud revision: {view['last_revision']}",
        f"outbox: {box['pending']} pending of {box['stored']} stored,"
        f" last sequence {box['last_sequence']}",
        "keypad: "
        + (f"locked until {keypad['locked_until']}" if keypad["locked"] else "open")
        + f", {keypad['recent_failures']} recent wrong code(s)",
        f"parcels: {counts}",
    ]
    for op in view["active_operations"]:
        lines.append(
            f"in progress: door {op['door']} {op['purpose']} {op['state']} since {op['since']}"
        )
    rows = [
        [
            str(d["door"]),
            d["size"],
            d["status"],
            d["sensor"],
            d["fault"] or d["maintenance_reason"] or "-",
        ]
        for d in view["doors"]
    ]
    print("\n".join(lines))
    print(_table(["door", "size", "status", "sensor", "fault"], rows))
    return OK


def _parcels(args: argparse.Namespace) -> int:
    from kiosk import inspection

    wanted = (
        None if not args.status else [s for s in list(AllocationStatus) if s.value in args.status]
    )
    with _read_only(args) as db:
        view = inspection.parcels(db, wanted)
    if args.json:
        return _print_json(view)
    rows = [
        [
            p["allocation_id"],
            p["kind"],
            p["barcode"],
            p["size"],
            "-" if p["door"] is None else str(p["door"]),
            p["status"],
            p["pickup_expires_at"] or p["reservation_expires_at"] or "-",
        ]
        for p in view
    ]
    print(_table(["allocation", "kind", "barcode", "size", "door", "status", "until"], rows))
    return OK


def _audit(args: argparse.Namespace) -> int:
    from kiosk import inspection

    with _read_only(args) as db:
        view = inspection.audit_entries(db, args.limit, args.door)
    if args.json:
        return _print_json(view)
    rows = [
        [
            str(e["audit_id"]),
            e["at"],
            e["actor"],
            "-" if e["door"] is None else str(e["door"]),
            e["command"],
            e["result"],
            json.dumps(e["detail"], sort_keys=True),
        ]
        for e in view
    ]
    print(_table(["id", "at", "actor", "door", "command", "result", "detail"], rows))
    return OK


def _events(args: argparse.Namespace) -> int:
    from kiosk import inspection

    with _read_only(args) as db:
        view = inspection.outbox_events(db, pending_only=args.pending, limit=args.limit)
    if args.json:
        return _print_json(view)
    rows = [
        [
            str(e["sequence"]),
            e["created_at"],
            e["type"],
            "acked" if e["acked"] else "pending",
            json.dumps(e["payload"], sort_keys=True),
        ]
        for e in view
    ]
    print(_table(["seq", "at", "type", "state", "payload"], rows))
    return OK


def _load(path: Path, *, read_secret: bool = True) -> KioskConfig:
    try:
        return load_config(path, read_secret=read_secret)
    except KioskConfigError as error:
        raise _Failed(USAGE_ERROR, str(error)) from None


@contextmanager
def _read_only(args: argparse.Namespace) -> Iterator[Database]:
    from kiosk import inspection

    database = (
        args.database
        if args.database is not None
        else _load(args.config, read_secret=False).database
    )
    try:
        with inspection.open_read_only(database) as db:
            yield db
    except inspection.InspectionError as error:
        raise _Failed(FAILURE, str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _print_json(value: object) -> int:
    print(json.dumps(value, indent=2, sort_keys=True))
    return OK


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _door_list(numbers: Sequence[int]) -> str:
    if not numbers:
        return "no doors"
    return f"doors {numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else f"door {numbers[0]}"


if __name__ == "__main__":
    sys.exit(main())


def _broker_identity(sync: SyncConfig) -> str:
    """How check-config describes the kiosk's credentials at the broker (never the password)."""
    shown = []
    if sync.client_cert_file is not None:
        shown.append(f"client certificate {sync.client_cert_file} loaded")
    if sync.username is not None:
        shown.append(f"user {sync.username!r}" + (" with a password" if sync.password else ""))
    return "; " + ", ".join(shown) if shown else ""
