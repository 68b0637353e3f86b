"""A kill -9 campaign that lands between the commit and the pulse on purpose (issue 11).

The real daemon (``python -m kiosk.cli run``) drives simulated Kerong boards on a pseudo-terminal
(the crash test's rig: every pulse is checked against the SQLite file as it happens). Each round:

1. board 0 is muted (it hears but never answers: a broken transmit line), so the monitor's poll
   in flight waits out its request timeout, and a pickup's unlock frame queues behind it;
2. a customer scans a pickup code: the daemon commits the code's opening (the code is spent)
   and its pulse waits for the bus;
3. the moment the committed ``unlocking`` operation is in the file, the daemon is killed;
4. the board answers again and the daemon restarts: boot reconciliation finds the operation that
   never got the bus (no ``pulse_started_at``), abandons it and gives the code back;
5. the same code scanned again opens the door, and the parcel taken out is picked up.

No pulse ever went out for a killed operation, every killed code was given back with one
``code_given_back`` event, and every code opened its door exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from hardware_sim.lock_board import LockBoardSimulator
from hardware_sim.scanner import SimulatedScanner

from .test_crash import (
    DEPOSITED,
    DaemonProcess,
    PulseLedger,
    address,
    rig,  # noqa: F401 - the fixture
    write_crash_config,
)

ROUNDS = [("p3", 3, "DEF567"), ("p4", 4, "GHJ789"), ("p5", 5, "KMN234")]
REQUEST_TIMEOUT_S = 4.0  # the window between the commit and the pulse, made wide on purpose


def read(database: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=10) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, args))


def wait_until(condition: object, timeout_s: float = 20.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_kill_9_between_the_commit_and_the_pulse_gives_the_code_back(
    rig: tuple[LockBoardSimulator, SimulatedScanner, PulseLedger],  # noqa: F811
    tmp_path: Path,
) -> None:
    sim, scanner, ledger = rig
    database = tmp_path / "kiosk.db"
    config = write_crash_config(
        tmp_path, sim.path, scanner.path, request_timeout_s=REQUEST_TIMEOUT_S
    )
    assert all(door in {d for _, d, _ in DEPOSITED} for _, door, _ in ROUNDS)
    runs = [DaemonProcess(config, tmp_path, 0)]
    try:
        runs[-1].wait_ready()
        for allocation_id, door, code in ROUNDS:
            board = sim.board(address(door)[0])
            board.mute()
            time.sleep(0.3)  # a poll is now on the bus, waiting out its timeout
            scanner.scan(code)

            def committed(door: int = door) -> bool:
                return bool(
                    read(
                        database,
                        "SELECT 1 FROM door_operations WHERE door = ? AND state = 'unlocking'",
                        door,
                    )
                )

            wait_until(committed)
            runs[-1].kill()  # between the commit and the pulse
            [operation] = read(
                database,
                "SELECT operation_id, pulse_started_at FROM door_operations"
                " WHERE door = ? AND state = 'unlocking'",
                door,
            )
            assert operation["pulse_started_at"] is None
            assert sim.door(*address(door)).pulses == 0
            board.mute(False)

            runs.append(DaemonProcess(config, tmp_path, len(runs)))
            runs[-1].wait_ready()
            [given] = read(
                database,
                "SELECT operation_id FROM audit_log WHERE command = 'code_given_back'"
                " AND operation_id = ?",
                operation["operation_id"],
            )
            assert given is not None

            scanner.scan(code)  # the customer tries again: the code works
            wait_until(lambda door=door: sim.door(*address(door)).is_open)

            def seen_open(door: int = door) -> bool:
                return bool(
                    read(
                        database,
                        "SELECT 1 FROM door_operations WHERE door = ? AND state = 'open'",
                        door,
                    )
                )

            wait_until(seen_open)  # the customer holds the door open a moment
            sim.door(*address(door)).set_occupied(False)  # the parcel taken out
            sim.door(*address(door)).close()
            wait_until(
                lambda allocation_id=allocation_id: (
                    read(
                        database,
                        "SELECT status FROM allocations WHERE allocation_id = ?",
                        allocation_id,
                    )[0]["status"]
                    == "picked_up"
                )
            )
        assert runs[-1].terminate() == 0, runs[-1].log_tail()
    finally:
        if runs[-1].process.poll() is None:
            runs[-1].kill()

    assert ledger.errors == []
    events = read(database, "SELECT type, payload FROM outbox ORDER BY sequence")
    given_back = [e for e in events if e["type"] == "code_given_back"]
    assert len(given_back) == len(ROUNDS)
    assert sorted(e["type"] for e in events).count("parcel_picked_up") == len(ROUNDS)
    # Each code opened its door once: one pulse per round, all by the second attempt.
    for _, door, _ in ROUNDS:
        assert sim.door(*address(door)).pulses == 1
    pulsed_operations = {p.operation_id for p in ledger.pulses}
    killed = {
        row["operation_id"]
        for row in read(
            database, "SELECT operation_id FROM audit_log WHERE command = 'code_given_back'"
        )
    }
    assert pulsed_operations.isdisjoint(killed)
