"""``locker-kiosk`` field tools (issue 11): test a real bank with the daemon stopped, clear faults.

``bus-scan``, ``read-doors``, ``pulse``, ``door-map`` and ``diagnostics`` open the lock-board port
exclusively (as the daemon does), so they refuse with one clear line while the daemon holds it.
Every pulse is audited in the kiosk's store (``field_pulse``, with the tech's name and the result)
and the door's reading after it is recorded, so the next boot does not take a door the tech left
open for a tamper. ``clear-fault`` clears a door's fault, audited. Every command and option is
documented in ``docs/kiosk.md`` (a test checks it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig
from kiosk.hardware.serial_board import SerialBankConfig

FIELD_PULSE = "field_pulse"
"""The audit log's command for a pulse from ``locker-kiosk pulse``."""


class FieldToolFailed(Exception):
    """A field command failed; ``status`` is its exit status (the message is one line)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def add_commands(sub: Any, load: Any) -> None:
    """Adds the field commands to ``locker-kiosk``'s subparsers.

    Args:
        sub: The subparsers action.
        load: Loads a configuration file (the CLI's own loader: its errors, its exit status).
    """

    def command(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        parser.add_argument("--config", required=True, type=Path, help="the kiosk's TOML file")
        parser.set_defaults(handler=lambda args: handler(args, load(args.config)))
        return parser

    scan = command("bus-scan", "list the lock-board addresses that answer", _bus_scan)
    scan.add_argument("--json", action="store_true", help="print JSON instead of lines")
    read = command("read-doors", "read every lock and sensor now", _read_doors)
    read.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pulse = command("pulse", "pulse one door, or each door in turn, audited", _pulse)
    which = pulse.add_mutually_exclusive_group(required=True)
    which.add_argument("--door", help="the door to pulse: its label (B5) or its number")
    which.add_argument(
        "--each", action="store_true", help="every door in turn, each shut before the next"
    )
    pulse.add_argument(
        "--shut-timeout",
        type=float,
        default=60.0,
        help="with --each: seconds to wait for each opened door to be shut (default 60)",
    )
    pulse.add_argument("--by", required=True, help="who is pulsing (for the audit log)")
    pulse.add_argument("--json", action="store_true", help="print JSON instead of lines")
    door_map = command("door-map", "print the door map: door -> board:lock, size", _door_map)
    door_map.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report = command("diagnostics", "a report for support (JSON)", _diagnostics)
    report.add_argument("--output", type=Path, help="write the report here (default stdout)")
    clear = command("clear-fault", "clear a door's fault, audited", _clear_fault)
    clear.add_argument("--door", type=int, required=True, help="the door")
    clear.add_argument("--by", required=True, help="who clears it (for the audit log)")


def check_config_lines(config: KioskConfig) -> list[str]:
    """What ``check-config`` adds: an unstable-port warning and the door map (serial banks)."""
    from kiosk.diagnostics import door_map_rows, unstable_port_warning

    serial = config.doors.serial
    if serial is None:
        return []
    lines = []
    warning = unstable_port_warning(serial.port)
    if warning is not None:
        lines.append(warning)
    lines.append("door map (door: board:lock, size, sensors):")
    for row in door_map_rows(serial, config.layout):
        size = "-" if row.size is None else row.size.value
        lines.append(f"  {row.door}: {row.board}:{row.lock}, {size}, {row.sensors}")
    return lines


def _serial(config: KioskConfig) -> SerialBankConfig:
    serial = config.doors.serial
    if serial is None:
        raise FieldToolFailed(
            2, f"field tools drive lock boards; this kiosk's doors are {config.doors.backend}"
        )
    return serial


def _field_doors(config: KioskConfig) -> list[int]:
    """The doors the field tools may drive: a serial bank's door map, or the GPIO pins'."""
    serial, gpio = config.doors.serial, config.doors.gpio
    if serial is not None:
        return list(serial.door_map.doors)
    if gpio is not None:
        return sorted(gpio.pins)
    raise FieldToolFailed(
        2, f"field tools drive lock boards or GPIO; this kiosk's doors are {config.doors.backend}"
    )


def _open_gpio(config: KioskConfig) -> Any:
    """The configured GPIO bank (issue 11: the field tools drive GPIO banks too). A pin another
    program holds (the daemon) refuses, as a held serial port does."""
    from kiosk.hardware.config import create_door_bank

    try:
        return create_door_bank(config.doors)
    except Exception as error:  # gpiozero's errors (a pin in use, no such pin), ImportError
        raise FieldToolFailed(
            1, f"the GPIO pins cannot be claimed ({error}): stop the kiosk daemon first"
        ) from None


def _run(coro: Any) -> Any:
    from kiosk.hardware.errors import LockBoardError

    try:
        return asyncio.run(coro)
    except LockBoardError as error:
        raise FieldToolFailed(1, str(error)) from None


def _bus_scan(args: argparse.Namespace, config: KioskConfig) -> int:
    from kiosk.diagnostics import scan_bus

    serial = _serial(config)
    found: list[int] = _run(scan_bus(serial))
    expected = sorted(serial.door_map.locks_by_board())
    if args.json:
        print(json.dumps({"port": serial.port, "answering": found, "configured": expected}))
        return 0
    print(f"{serial.protocol.title} boards on {serial.port}:")
    print("answering: " + (", ".join(map(str, found)) or "none"))
    for board in expected:
        if board not in found:
            print(f"configured but silent: board {board}")
    for board in found:
        if board not in expected:
            print(f"answering but not configured: board {board}")
    return 0


async def _read_all(serial: SerialBankConfig) -> dict[str, Any]:
    from kiosk.diagnostics import open_bank, read_doors

    bank = open_bank(serial)
    try:
        states = await read_doors(bank)
    finally:
        await bank.aclose()
    rows = {}
    for door, state in states.items():
        where = serial.door_map.address(door)
        rows[str(door)] = {
            "board": where.board,
            "lock": where.lock,
            "lock_state": state.lock.value,
            "occupied": state.occupied,
        }
    return rows


async def _read_gpio(config: KioskConfig) -> dict[str, Any]:
    gpio = config.doors.gpio
    assert gpio is not None
    bank = _open_gpio(config)
    try:
        states = await bank.read_states()
    finally:
        await bank.aclose()
    return {
        str(door): {
            "board": f"gpio{gpio.pins[door].solenoid}",
            "lock": f"gpio{gpio.pins[door].sensor}",
            "lock_state": state.lock.value,
            "occupied": state.occupied,
        }
        for door, state in sorted(states.items())
    }


def _read_doors(args: argparse.Namespace, config: KioskConfig) -> int:
    if config.doors.gpio is not None:
        rows: dict[str, Any] = _run(_read_gpio(config))
    else:
        rows = _run(_read_all(_serial(config)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for door, row in rows.items():
        occupied = {True: "full", False: "empty", None: "-"}[row["occupied"]]
        print(f"door {door} ({row['board']}:{row['lock']}): {row['lock_state']}, {occupied}")
    return 0


async def _wait_shut(bank: Any, door: int, timeout_s: float) -> float | None:
    """Seconds until ``door`` reads shut again, or None if it is still open after the timeout
    (issue 11: ``pulse --each`` tests one door at a time, the tech shutting each)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        state = (await bank.read_states())[door]
        if not state.is_open:
            return round(loop.time() - start, 2)
        if loop.time() - start >= timeout_s:
            return None
        await asyncio.sleep(0.1)


async def _pulse_and_audit(
    config: KioskConfig,
    serial: SerialBankConfig | None,
    doors: list[int],
    by: str,
    shut_timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    from kiosk.daemon import DaemonError, open_store
    from kiosk.diagnostics import open_bank, pulse_doors, read_doors
    from kiosk.store import audit
    from kiosk.store import doors as door_records
    from kiosk.store.records import Actor

    bank = open_bank(serial) if serial is not None else _open_gpio(config)
    try:
        # Refuses (PortHeld) before anything is written.
        await (read_doors(bank) if serial is not None else bank.read_states())
    except BaseException:
        await bank.aclose()
        raise
    try:
        store = open_store(config)
    except DaemonError as error:
        await bank.aclose()
        raise FieldToolFailed(1, str(error)) from None
    results: list[dict[str, Any]] = []
    try:
        for door in doors:
            # Audited before the pulse (pending), finished with its result after it.
            with store.transaction() as db:
                audit_id = audit.record_entry(
                    db,
                    datetime.now(UTC),
                    Actor.STAFF,
                    FIELD_PULSE,
                    audit.PENDING,
                    door=door,
                    detail={"by": by},
                )
            try:
                if serial is not None:
                    [result] = await pulse_doors(bank, [door])
                else:
                    result = await _pulse_gpio(bank, door)
            except BaseException:
                with store.transaction() as db:
                    audit.finish_entry(db, audit_id, "not sent", datetime.now(UTC))
                raise
            outcome = result if isinstance(result, str) else result.outcome.value
            shut: float | None = None
            if shut_timeout_s is not None and outcome == "opened":
                shut = await _wait_shut(bank, door, shut_timeout_s)
                outcome = "opened, left open" if shut is None else "opened, shut"
            with store.transaction() as db:
                now = datetime.now(UTC)
                audit.finish_entry(db, audit_id, outcome, now)
                if not isinstance(result, str):
                    state = await bank.read_states()
                    reading = state[door]
                    door_records.record_sensors(db, door, reading.is_open, reading.occupied, now)
            row: dict[str, Any] = {"door": door, "result": outcome}
            if shut_timeout_s is not None and outcome.startswith("opened"):
                row["shut_after_s"] = shut
            results.append(row)
    finally:
        await bank.aclose()
        store.close()
    return results


async def _pulse_gpio(bank: Any, door: int) -> Any:
    from kiosk.hardware.errors import LockBoardError

    try:
        return await bank.unlock(door)
    except LockBoardError as error:
        return f"{type(error).__name__}: {error}"


def _door_by_label(config: KioskConfig, named: str) -> int:
    """The door ``named`` (a label as the cloud set it, e.g. ``B5``, or a door number)."""
    if named.isdigit():
        return int(named)
    from kiosk import inspection

    try:
        with inspection.open_read_only(config.database) as db:
            row = db.execute("SELECT number FROM doors WHERE label = ?", [named]).fetchone()
    except inspection.InspectionError as error:
        raise FieldToolFailed(2, f"no door labelled {named!r}: {error}") from None
    if row is None:
        raise FieldToolFailed(2, f"no door labelled {named!r} here (see door-map)")
    return int(row[0])


def _labels(config: KioskConfig) -> dict[int, str]:
    from kiosk import inspection

    try:
        with inspection.open_read_only(config.database) as db:
            rows = db.execute("SELECT number, label FROM doors WHERE label IS NOT NULL")
            return {int(n): str(label) for n, label in rows.fetchall()}
    except inspection.InspectionError:
        return {}  # no store yet: doors by number


def _pulse(args: argparse.Namespace, config: KioskConfig) -> int:
    serial = config.doors.serial
    known = _field_doors(config)
    doors = known if args.each else [_door_by_label(config, args.door)]
    unknown = [door for door in doors if door not in known]
    if unknown:
        raise FieldToolFailed(2, f"door {unknown[0]} is not in the door map")
    if args.shut_timeout <= 0:
        raise FieldToolFailed(2, "--shut-timeout must be positive")
    wait = args.shut_timeout if args.each else None
    results: list[dict[str, Any]] = _run(_pulse_and_audit(config, serial, doors, args.by, wait))
    labels = _labels(config)
    if args.json:
        print(json.dumps([{**row, "label": labels.get(row["door"])} for row in results]))
    else:
        for row in results:
            name = labels.get(row["door"])
            door = f"{row['door']} ({name})" if name else str(row["door"])
            line = f"door {door}: {row['result']}"
            if row.get("shut_after_s") is not None:
                line += f" after {row['shut_after_s']} s"
            elif "shut_after_s" in row:
                line += f" ({args.shut_timeout:g} s)"
            print(line)
    return 0 if all(row["result"] in ("opened", "opened, shut") for row in results) else 1


def _door_map(args: argparse.Namespace, config: KioskConfig) -> int:
    from kiosk.diagnostics import door_map_rows

    rows = door_map_rows(_serial(config), config.layout)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "door": r.door,
                        "label": _labels(config).get(r.door),
                        "board": r.board,
                        "lock": r.lock,
                        "size": None if r.size is None else r.size.value,
                        "sensors": r.sensors,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return 0
    labels = _labels(config)
    for r in rows:
        size = "-" if r.size is None else r.size.value
        door = f"{r.door} ({labels[r.door]})" if r.door in labels else str(r.door)
        print(f"door {door}: board {r.board} lock {r.lock}, {size}, {r.sensors}")
    return 0


def _diagnostics(args: argparse.Namespace, config: KioskConfig) -> int:
    from kiosk.diagnostics import door_map_rows, scan_bus, unstable_port_warning
    from kiosk.hardware.errors import LockBoardError

    serial = _serial(config)
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "kiosk_id": config.kiosk_id,
        "location_id": config.location_id,
        "host": platform.node(),
        "python": platform.python_version(),
        "port": serial.port,
        "protocol": serial.protocol.name,
        "baudrate": serial.effective_baudrate,
        "port_warning": unstable_port_warning(serial.port),
        "door_map": [
            {"door": r.door, "board": r.board, "lock": r.lock, "sensors": r.sensors}
            for r in door_map_rows(serial, config.layout)
        ],
    }
    try:
        report["answering_boards"] = _run(scan_bus(serial))
        report["doors"] = _run(_read_all(serial))
    except FieldToolFailed as failure:
        if "held by another program" in str(failure):
            raise
        report["error"] = str(failure)
    except LockBoardError as error:  # pragma: no cover - _run turns these into FieldToolFailed
        report["error"] = str(error)
    report["store"] = _store_summary(config.database)
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
        print(f"diagnostics written to {args.output}")
    else:
        print(text)
    return 0


def _store_summary(database: Path) -> dict[str, Any] | str:
    from kiosk import inspection

    try:
        with inspection.open_read_only(database) as db:
            view = inspection.status(db, datetime.now(UTC))
            recent = inspection.audit_entries(db, 50, None)
    except inspection.InspectionError as error:
        return str(error)
    return {"status": view, "recent_audit": recent}


def _clear_fault(args: argparse.Namespace, config: KioskConfig) -> int:
    from kiosk.daemon import DaemonError, open_store
    from kiosk.flows.faults import clear_fault
    from kiosk.flows.refusals import FlowRefused
    from kiosk.store.records import Actor

    try:
        store = open_store(config)
    except DaemonError as error:
        raise FieldToolFailed(1, str(error)) from None
    try:
        fault = clear_fault(
            store, args.door, actor=Actor.STAFF, cleared_by=args.by, now=datetime.now(UTC)
        )
    except FlowRefused as refused:
        raise FieldToolFailed(2, refused.message) from None
    finally:
        store.close()
    print(f"door {args.door}: " + ("no fault" if fault is None else f"cleared ({fault})"))
    return 0
