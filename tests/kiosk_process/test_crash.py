"""The crash test: the real kiosk daemon, killed with SIGKILL at random points, loses nothing.

Set-up, all real but the people:

- simulated Kerong boards (lock and IR occupancy sensors) on a pseudo-terminal held by this
  process, and a simulated scanner on another, exactly as the field tech's simulator serves them;
- a file SQLite store seeded as the cloud would seed it: parcels deposited behind pickup codes
  (two of them share a code), and reservations waiting for drivers' barcodes;
- ``python -m kiosk.cli run`` as a subprocess, configured for those ports.

Customers and drivers scan codes and barcodes (used ones too, on purpose); a "people" thread plays
everyone in front of the doors: a door that springs open is held open a moment, the parcel taken
out (pickup) or put in (drop-off), and the door pushed shut. Meanwhile the daemon is killed with
SIGKILL at random moments, mostly a random fraction of a second after a scan (so inside a flow,
between commit and pulse, during the pulse, or while the door is open) and restarted each time.
People go on closing doors while the daemon is down and booting, as they would.

Every pulse is checked as it happens: each simulated door reads the SQLite file at the instant
the board pulses it and notes the newest committed ``unlock`` audit entry for that door and the
state of its operation. At the end, from the SQLite file and those notes:

1. every pulse had a committed ``unlock`` entry of an active operation before it, and no entry
   was pulsed twice (the bus is set to no retries, so one command is one pulse);
2. no code opened doors twice: one accepted attempt per code, and its pulses belong to that
   attempt's operations only;
3. every parcel whose door was opened and shut is picked up (taken out) or deposited (put in)
   exactly once, with exactly one outbox event, and no other parcel moved;
4. outbox sequences are 1..n with no gap and no duplicate event id;
5. after the final restart (its boot reconciliation) and a clean stop, no audit entry is
   ``pending`` and no door operation is left active; no tamper was ever recorded.
"""

from __future__ import annotations

import os
import random
import re
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hardware_sim.doors import SimulatedDoor
from hardware_sim.lock_board import LockBoardSimulator
from hardware_sim.scanner import SimulatedScanner
from kiosk.hardware.protocols import BoardProtocol
from shared.codes import CODE_ALPHABET
from shared.sizes import Size

from .helpers import SECRET, open_store, seed

SEED = 20260302
KILLS = 25
SPRING_DELAY_S = 0.05
BOARDS = {0: 8, 1: 4}  # doors 1-8 on board 0, doors 9-12 on board 1
LAYOUT = dict.fromkeys(range(1, 9), Size.SMALL) | {9: Size.MEDIUM, 10: Size.MEDIUM}
LAYOUT |= {11: Size.LARGE, 12: Size.LARGE}
# Parcels waiting behind codes (p1 and p2 belong to one customer: one code, two doors).
DEPOSITED = [
    ("p1", 1, "ABC234"),
    ("p2", 2, "ABC234"),
    ("p3", 3, "DEF567"),
    ("p4", 4, "GHJ789"),
    ("p5", 5, "KMN234"),
    ("p6", 6, "PQR567"),
]
# Reservations: proposed doors 7-10, and one without a door (the kiosk picks a free one).
RESERVED = [
    ("r1", 7, "PARCEL-0001"),
    ("r2", 8, "PARCEL-0002"),
    ("r3", 9, "PARCEL-0003"),
    ("r4", 10, "PARCEL-0004"),
    ("r5", None, "PARCEL-0005"),
]
# The cloud issues pickup codes with the reservation: once deposited, customers pick them up.
RESERVED_CODES = {"r1": "STU234", "r2": "VWX567", "r3": "YZA789", "r4": "BCD234", "r5": "EFG567"}
READY_TIMEOUT_S = 60.0


def address(door: int) -> tuple[int, int]:
    return (0, door) if door <= 8 else (1, door - 8)


@dataclass(frozen=True)
class Pulse:
    """What the SQLite file held when the board pulsed a door."""

    door: int
    audit_id: int | None
    operation_id: str | None
    operation_state: str | None
    code_id: int | None


class PulseLedger:
    """Notes, at each pulse, the newest committed unlock entry for the door (in the sim thread)."""

    def __init__(self, database: Path) -> None:
        self.uri = f"{database.resolve().as_uri()}?mode=ro"
        self.pulses: list[Pulse] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def pulsed(self, door: int) -> None:
        try:
            conn = sqlite3.connect(self.uri, uri=True, timeout=10)
            try:
                row = conn.execute(
                    "SELECT a.audit_id, a.operation_id, o.state, o.code_id FROM audit_log a"
                    " JOIN door_operations o ON o.operation_id = a.operation_id"
                    " WHERE a.command = 'unlock' AND a.door = ? ORDER BY a.audit_id DESC LIMIT 1",
                    [door],
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as error:
            with self._lock:
                self.errors.append(f"door {door}: {error}")
            row = None
        pulse = Pulse(door, *row) if row else Pulse(door, None, None, None, None)
        with self._lock:
            self.pulses.append(pulse)


class AuditedDoor(SimulatedDoor):
    """A simulated door that reports each pulse to the ledger before acting on it."""

    def __init__(self, door: int, ledger: PulseLedger) -> None:
        super().__init__(spring_delay_s=SPRING_DELAY_S)
        self.door = door
        self.ledger = ledger

    def pulse(self) -> None:
        self.ledger.pulsed(self.door)
        super().pulse()


@dataclass
class People:
    """Everyone in front of the doors: holds each opened door a moment, takes the parcel out or
    puts one in, and pushes the door shut. Runs in a thread, whether the daemon is up or not."""

    sim: LockBoardSimulator
    rng: random.Random
    actions: list[tuple[int, str]] = field(default_factory=list)
    _opened_at: dict[int, tuple[float, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def door(self, number: int) -> SimulatedDoor:
        return self.sim.door(*address(number))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="people", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def any_open(self) -> bool:
        return any(self.door(n).is_open for n in LAYOUT)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            now = time.monotonic()
            for number in LAYOUT:
                door = self.door(number)
                if not door.is_open:
                    continue
                # A person holds the door open long enough for the kiosk's 0.1 s polls to see it.
                seen, hold = self._opened_at.setdefault(number, (now, self.rng.uniform(0.4, 0.9)))
                if now - seen < hold:
                    continue
                took = door.occupied
                door.set_occupied(not took)
                door.close()
                self.actions.append((number, "take" if took else "put"))
                del self._opened_at[number]


class DaemonProcess:
    """``locker-kiosk run`` as a subprocess, its log in a file per run."""

    def __init__(self, config: Path, logs: Path, run: int) -> None:
        self.log_path = logs / f"daemon-{run:02d}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "run", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=log,
            )

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if readable:
                line = self.process.stdout.readline().decode()
                if line.startswith("ready:"):
                    return
                if not line:
                    break
        raise AssertionError(f"the daemon never became ready:\n{self.log_tail()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._close()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=30)
        self._close()
        return status

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[LockBoardSimulator, SimulatedScanner, PulseLedger]]:
    database = tmp_path / "kiosk.db"
    with open_store(database) as store:
        seed(store, LAYOUT, deposited=DEPOSITED, reserved=RESERVED, reserved_codes=RESERVED_CODES)
    ledger = PulseLedger(database)
    sim = LockBoardSimulator(BoardProtocol.KERONG, BOARDS, spring_delay_s=SPRING_DELAY_S)
    for number in LAYOUT:
        board, lock = address(number)
        sim.board(board).doors[lock] = AuditedDoor(number, ledger)
    for _, door, _ in DEPOSITED:
        sim.door(*address(door)).set_occupied(True)
    scanner = SimulatedScanner()
    sim.start()
    scanner.start()
    try:
        yield sim, scanner, ledger
    finally:
        scanner.stop()
        sim.stop()


def write_crash_config(
    folder: Path, bus: str, scanner: str, *, request_timeout_s: float = 1.5
) -> Path:
    boards = ", ".join(f"{{ address = {a}, locks = {n} }}" for a, n in BOARDS.items())
    layout = "\n".join(f'"{door}" = "{size}"' for door, size in LAYOUT.items())
    path = folder / "kiosk.toml"
    path.write_text(
        f"""
[kiosk]
location_id = "loc-test"
kiosk_id = "kiosk-test"
database = "kiosk.db"
code_secret = "{SECRET}"
scanner_driver_id = "driver-7"

[layout]
{layout}

[doors]
backend = "serial"
open_timeout_s = 3.0
poll_interval_s = 0.05

[doors.serial]
port = "{bus}"
protocol = "kerong"
# One command, one pulse: no resent unlock, so every pulse maps to one audit entry.
retries = 0
request_timeout_s = {request_timeout_s}
unlock_listen_s = 0.02
boards = [{boards}]

[scanner]
port = "{scanner}"

[monitor]
poll_interval_s = 0.1
max_backoff_s = 1.0
""",
        encoding="utf-8",
    )
    return path


class Work:
    """What customers and drivers can scan, topped up between kills as the cloud would send it.

    Codes are kept here in plaintext (the store only has their keyed hash): code to parcel ids,
    and barcode to reservation id.
    """

    def __init__(self, database: Path, rng: random.Random) -> None:
        self.database = database
        self.rng = rng
        self.codes: dict[str, list[str]] = {}
        self.barcodes: dict[str, str] = {}
        for allocation_id, _, code in DEPOSITED:
            self.codes.setdefault(code, []).append(allocation_id)
        for allocation_id, _, barcode in RESERVED:
            self.barcodes[barcode] = allocation_id
        for allocation_id, code in RESERVED_CODES.items():
            self.codes.setdefault(code, []).append(allocation_id)
        self.added = 0

    def new_code(self) -> str:
        code = "".join(self.rng.choice(CODE_ALPHABET) for _ in range(6))
        self.codes[code] = []
        return code

    def statuses(self) -> dict[str, str]:
        with sqlite3.connect(f"{self.database.as_uri()}?mode=ro", uri=True) as db:
            return dict(db.execute("SELECT allocation_id, status FROM allocations").fetchall())

    def pending(self) -> tuple[list[str], list[str]]:
        status = self.statuses()
        codes = [c for c, ids in self.codes.items() if any(status[i] == "deposited" for i in ids)]
        barcodes = [b for b, i in self.barcodes.items() if status[i] == "reserved"]
        return codes, barcodes

    def choose(self) -> str:
        """Mostly pending work; sometimes a used code or a deposited barcode, on purpose."""
        codes, barcodes = self.pending()
        pending = codes + barcodes
        if pending and self.rng.random() < 0.8:
            return self.rng.choice(pending)
        return self.rng.choice([*self.codes, *self.barcodes])

    def top_up(self, sim: LockBoardSimulator) -> None:
        """While the daemon is down: new parcels in free doors and new reservations."""
        codes, barcodes = self.pending()
        with open_store(self.database) as store:
            taken = {
                row["number"]
                for row in store.db.query("SELECT number FROM doors WHERE status != 'available'")
            }
            taken |= {
                row["door"]
                for row in store.db.query(
                    "SELECT door FROM door_operations WHERE state IN"
                    " ('unlocking', 'open', 'not_detected', 'failed')"
                )
            }
            free = [
                n
                for n in LAYOUT
                if n not in taken
                and not sim.door(*address(n)).occupied
                and not sim.door(*address(n)).is_open
            ]
            deposited: list[tuple[str, int, str]] = []
            reserved: list[tuple[str, int | None, str]] = []
            while len(codes) + len(deposited) < 3 and len(free) > 2:
                self.added += 1
                door = free.pop(self.rng.randrange(len(free)))
                code = self.new_code()
                deposited.append((f"p-new-{self.added}", door, code))
                self.codes[code].append(f"p-new-{self.added}")
                sim.door(*address(door)).set_occupied(True)
            codes_for: dict[str, str] = {}
            while len(barcodes) + len(reserved) < 3:
                self.added += 1
                allocation_id = f"r-new-{self.added}"
                proposed = free.pop(0) if free and self.rng.random() < 0.5 else None
                barcode = f"PARCEL-{1000 + self.added}"
                reserved.append((allocation_id, proposed, barcode))
                self.barcodes[barcode] = allocation_id
                code = self.new_code()
                self.codes[code].append(allocation_id)
                codes_for[allocation_id] = code
            seed(store, LAYOUT, deposited=deposited, reserved=reserved, reserved_codes=codes_for)


def test_kill_9_at_random_points_never_loses_or_repeats_a_door_event(
    rig: tuple[LockBoardSimulator, SimulatedScanner, PulseLedger], tmp_path: Path
) -> None:
    sim, scanner, ledger = rig
    rng = random.Random(SEED)
    config = write_crash_config(tmp_path, sim.path, scanner.path)
    work = Work(tmp_path / "kiosk.db", random.Random(SEED + 2))
    people = People(sim, random.Random(SEED + 1))
    people.start()
    started = time.monotonic()
    scans = 0
    runs: list[DaemonProcess] = [DaemonProcess(config, tmp_path, 0)]
    try:
        runs[-1].wait_ready()
        for _ in range(KILLS):
            # A few scans, then a kill a random fraction of a second after the last one: inside
            # the flow, between its commit and the pulse, during the pulse, or with doors open.
            for scan in range(rng.randint(1, 3)):
                if scan:
                    time.sleep(rng.uniform(0.05, 0.5))
                scanner.scan(work.choose())
                scans += 1
            # Half the kills land within the flow (commit, pulse, the unlock's own sensor polls),
            # the others later, with the door open or already shut.
            time.sleep(rng.uniform(0.0, 0.3) if rng.random() < 0.5 else rng.uniform(0.3, 1.2))
            runs[-1].kill()
            work.top_up(sim)
            runs.append(DaemonProcess(config, tmp_path, len(runs)))
            runs[-1].wait_ready()

        # Final run: no more scans; everyone closes their door; the daemon settles everything.
        deadline = time.monotonic() + 30
        while (people.any_open() or _active_operations(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # one more poll and sweep after the last door shut
        assert runs[-1].terminate() == 0, runs[-1].log_tail()
    finally:
        if runs[-1].process.poll() is None:
            runs[-1].kill()
        people.stop()
    elapsed = time.monotonic() - started

    with sqlite3.connect(f"{(tmp_path / 'kiosk.db').as_uri()}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        figures = _check(db, ledger, people, sim)
    figures.update(_reconciliations(runs))
    figures.update(kills=KILLS, scans=scans, parcels_added=work.added, seconds=round(elapsed, 1))
    print(f"crash test figures: {figures}")
    assert figures["pulses"] >= 10, figures  # the run did exercise the doors
    assert figures["settled_at_boot"] >= 1, figures  # and some kills did interrupt operations


def _reconciliations(runs: list[DaemonProcess]) -> dict[str, int]:
    totals = Counter[str]()
    pattern = re.compile(
        r"boot reconciliation: (\d+) operation\(s\) found open, (\d+) completed, (\d+) abandoned"
    )
    for run in runs:
        match = pattern.search(run.log_path.read_text(errors="replace"))
        assert match is not None, run.log_tail()
        opened, completed, abandoned = map(int, match.groups())
        totals["found_open_at_boot"] += opened
        totals["completed_at_boot"] += completed
        totals["abandoned_at_boot"] += abandoned
    totals["settled_at_boot"] = sum(totals.values())
    return dict(totals)


def _active_operations(folder: Path) -> int:
    with sqlite3.connect(f"{(folder / 'kiosk.db').as_uri()}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT count(*) FROM door_operations"
            " WHERE state IN ('unlocking', 'open', 'not_detected', 'failed')"
        ).fetchone()
        return int(row[0])


def _check(
    db: sqlite3.Connection, ledger: PulseLedger, people: People, sim: LockBoardSimulator
) -> dict[str, int]:
    assert ledger.errors == []
    pulses = list(ledger.pulses)
    operations = {row["operation_id"]: row for row in db.execute("SELECT * FROM door_operations")}
    unlocks = list(db.execute("SELECT * FROM audit_log WHERE command = 'unlock'"))

    # 1. Every pulse had a committed unlock entry of a live operation; one pulse per entry.
    total = sum(sim.door(*address(n)).pulses for n in LAYOUT)
    assert total == len(pulses)
    unrecorded = [p for p in pulses if p.audit_id is None]
    assert unrecorded == [], "pulses with no committed unlock entry"
    not_live = [
        p for p in pulses if p.operation_state not in ("unlocking", "not_detected", "failed")
    ]
    assert not_live == [], "pulses whose newest unlock entry belongs to a finished operation"
    twice = [a for a, n in Counter(p.audit_id for p in pulses).items() if n > 1]
    assert twice == [], "unlock entries pulsed more than once"
    assert {p.audit_id for p in pulses} <= {row["audit_id"] for row in unlocks}

    # 2. No code opened doors twice. A code given back (its operation never reached its door:
    # killed between the commit and the pulse) may be accepted once more; giving it back is
    # safe only because that operation was never pulsed.
    given_back = {
        row["operation_id"]: row["ref"]
        for row in db.execute(
            "SELECT operation_id, json_extract(detail, '$.code_ref') AS ref FROM audit_log"
            " WHERE command = 'code_given_back'"
        )
    }
    assert [p for p in pulses if p.operation_id in given_back] == [], "a pulsed code given back"
    accepted = Counter(
        row["ref"]
        for row in db.execute(
            "SELECT json_extract(detail, '$.code_ref') AS ref FROM audit_log"
            " WHERE command = 'code_entry' AND result = 'accepted'"
        )
    )
    given_per_code = Counter(given_back.values())
    assert [ref for ref, n in accepted.items() if n > 1 + given_per_code[ref]] == []
    parcels_per_code = Counter(
        row["code_id"]
        for row in db.execute("SELECT code_id FROM allocations WHERE code_id IS NOT NULL")
    )
    code_rows = {row["code_id"]: row for row in db.execute("SELECT * FROM codes")}
    for code_id in {op["code_id"] for op in operations.values() if op["code_id"] is not None}:
        ops = [
            op
            for op in operations.values()
            if op["code_id"] == code_id and op["operation_id"] not in given_back
        ]
        if not ops:
            continue  # given back and not used again
        doors = sorted(op["door"] for op in ops)
        assert len(doors) == len(set(doors)), f"code {code_id} opened door(s) twice: {doors}"
        assert code_rows[code_id]["used_at"] is not None
        # One set of doors: as many operations as the code had parcels, never more.
        assert len(ops) <= parcels_per_code[code_id], (code_id, doors)
        pulsed = Counter(p.operation_id for p in pulses if p.code_id == code_id)
        assert set(pulsed) <= {op["operation_id"] for op in ops}
        assert all(n == 1 for n in pulsed.values())
    assert len(accepted) <= len(parcels_per_code)

    # 3. Every door opened and shut settled its parcel exactly once, with one event.
    allocations = {row["allocation_id"]: row for row in db.execute("SELECT * FROM allocations")}
    events = list(db.execute("SELECT * FROM outbox ORDER BY sequence"))
    picked_events = Counter(
        row["allocation_id"]
        for row in db.execute(
            "SELECT json_extract(payload, '$.allocation_id') AS allocation_id FROM outbox"
            " WHERE type = 'parcel_picked_up'"
        )
    )
    deposited_events = Counter(
        row["allocation_id"]
        for row in db.execute(
            "SELECT json_extract(payload, '$.allocation_id') AS allocation_id FROM outbox"
            " WHERE type = 'parcel_deposited'"
        )
    )
    takes = Counter(door for door, action in people.actions if action == "take")
    puts = Counter(door for door, action in people.actions if action == "put")
    picked = [a for a in allocations.values() if a["status"] == "picked_up"]
    deposited_here = [
        a
        for a in allocations.values()
        if a["allocation_id"].startswith("r") and a["status"] in ("deposited", "picked_up")
    ]
    assert sum(takes.values()) == len(picked), (people.actions, picked)
    assert sum(puts.values()) == len(deposited_here), (people.actions, deposited_here)
    for parcel in picked:
        assert picked_events[parcel["allocation_id"]] == 1, parcel["allocation_id"]
        assert takes[parcel["door"]] >= 1
    for parcel in deposited_here:
        assert deposited_events[parcel["allocation_id"]] == 1, parcel["allocation_id"]
        assert puts[parcel["door"]] >= 1
        if parcel["status"] == "deposited":
            assert sim.door(*address(parcel["door"])).occupied
    for allocation_id, parcel in allocations.items():
        if parcel["status"] != "picked_up":
            assert picked_events[allocation_id] == 0, allocation_id
        if allocation_id.startswith("r") and parcel["status"] == "reserved":
            assert deposited_events[allocation_id] == 0, allocation_id
    for allocation_id, parcel in allocations.items():
        if allocation_id.startswith("p"):
            assert parcel["status"] in ("deposited", "picked_up"), allocation_id
        if parcel["status"] == "deposited":
            door = parcel["door"]
            assert sim.door(*address(door)).occupied, f"{allocation_id} taken but not recorded"

    # 4. Outbox sequences 1..n, no gap, no duplicate event id.
    sequences = [row["sequence"] for row in events]
    assert sequences == list(range(1, len(events) + 1))
    assert len({row["event_id"] for row in events}) == len(events)

    # 5. Nothing pending, nothing active, nothing tampered.
    assert db.execute("SELECT count(*) FROM audit_log WHERE result = 'pending'").fetchone()[0] == 0
    assert [op for op in operations.values() if op["state"] in ("unlocking", "open")] == []
    assert not [row for row in events if row["type"] == "door_tampered"]

    interrupted = db.execute(
        "SELECT count(*) FROM audit_log WHERE result = 'interrupted'"
    ).fetchone()[0]
    boot_settled = db.execute(
        "SELECT count(*) FROM outbox WHERE type = 'door_opened'"
        " AND json_extract(payload, '$.detail') = 'boot'"
    ).fetchone()[0]
    abandoned = sum(1 for op in operations.values() if op["state"] == "abandoned")
    return {
        "pulses": len(pulses),
        "operations": len(operations),
        "picked_up": len(picked),
        "deposited": len(deposited_here),
        "interrupted_entries": interrupted,
        "opened_at_boot": boot_settled,
        "abandoned": abandoned,
        "events": len(events),
    }


def test_the_pulse_ledger_sees_only_committed_entries(tmp_path: Path) -> None:
    # The check above is only as good as the ledger: an uncommitted entry must be invisible.
    database = tmp_path / "kiosk.db"
    with open_store(database) as store:
        seed(store, LAYOUT, deposited=DEPOSITED[:1])
        ledger = PulseLedger(database)
        conn = store.db.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO door_operations (operation_id, door, purpose, actor, state, created_at)"
            " VALUES ('op', 1, 'pickup', 'customer', 'unlocking', '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO audit_log (at, actor, door, command, result, operation_id)"
            " VALUES ('2026-01-01', 'customer', 1, 'unlock', 'pending', 'op')"
        )
        ledger.pulsed(1)
        conn.execute("COMMIT")
        ledger.pulsed(1)
    assert [p.audit_id is not None for p in ledger.pulses] == [False, True]
    assert ledger.pulses[1].operation_state == "unlocking"
    assert os.path.exists(database)
