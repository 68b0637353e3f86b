"""Kiosk benchmark: pickup code to unlock frame at the board, daemon memory and cold start.

What it measures, in one run:

1. **Pickup to unlock frame.** A file-backed store (``Store.open`` in a temporary folder: WAL,
   ``synchronous=FULL``, exactly as the kiosk opens it) with ``--doors`` doors on 8A/80 boards
   (50 locks a board) and ``--parcels`` parcels: one deposited parcel in every door, each with
   its own pickup code, the rest reserved with codes and no door yet. The door bank is the
   production `SerialBoardBank`, talking through a real pseudo-terminal to the lock-board
   simulator of ``hardware_sim`` (subclassed here, not edited, so its pty reader thread stamps
   every chunk of bytes with ``time.perf_counter_ns`` the moment it arrives).

   For each pickup the window runs from just before ``pick_up(ctx, code)`` is awaited to the
   moment the simulator's thread receives the last byte of the unlock frame for that parcel's
   door. Inside it: the code's HMAC and look-up, the pickup transaction (code used, door
   operation, audit entries, ``code_used`` outbox event) and its durable COMMIT (an fsync of
   the WAL), then the bank's unlock: ``asyncio.to_thread``, the bus lock, the write of the
   5-byte frame to the pty, and the simulator thread's wake-up. Outside it: the board's reply,
   the sensor polling that waits for the door to read open, and the transaction that records
   the result (``pick_up`` returns only after those; their total is reported apart as "full
   pick_up call"). Doors spring open at once in the simulator (``spring_delay_s=0``), so the
   door-open wait is one status query.

   The window is split with more stamps: when the pickup's outer transaction begins, when its
   ``COMMIT`` statement starts and when it returns (a `Store` subclass; the COMMIT through
   sqlite3's trace callback), and when the bank's ``_pulse`` is entered (a bank subclass).
   A pty has no baud rate: the 5 bytes arrive at once, where a 9600-baud RS-485 line takes
   about 5.2 ms to carry them (10 bits a byte).

   **Baseline, in the same run and on the same connection and file:** just before each pickup,
   one transaction of one outbox insert and one door update, committed through the same
   ``Store.transaction`` (``BEGIN IMMEDIATE`` ... ``COMMIT``, ``synchronous=FULL``). That is
   the floor: the durable commit the pickup must make before it may pulse (invariant 3).

   When ``--pickups`` exceeds the doors, the doors are emptied between rounds (every door
   recorded shut, as the door monitor would, which completes its pickup) and refilled with new
   parcels; that happens outside every measured window. The first ``--warmup`` pickups (port
   opening, caches) are not counted.

2. **Daemon memory and cold start.** The real daemon, ``locker-kiosk run --config PATH``, as a
   subprocess, with the ``fake`` door bank of ``--doors`` doors and a database seeded with the
   same parcels. Cold start is the wall time from just before the process is spawned to its
   ``ready`` line on stdout (median of ``--starts`` starts, same database each time). After the
   last start it is left idle for ``--idle-s`` seconds, and VmRSS and VmHWM are read from
   ``/proc/<pid>/status``, with the CPU time it used while idle. Baselines: the RSS of a bare
   ``python -c 'import time; time.sleep(9)'``; the start-up time of ``python -c pass`` and of
   ``python -c 'import kiosk.cli, kiosk.daemon'``, all with this interpreter. Skipped with
   ``--skip-daemon`` or when ``kiosk.daemon`` is missing.

The machine may be shared (other benchmarks, test suites): the load average is recorded at the
start and end, and the baselines measured alongside are the robust comparison.

Human-readable progress goes to stdout; the LAST line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from hardware_sim.lock_board import LockBoardSimulator
from kiosk.flows.context import FlowContext, FlowRules
from kiosk.flows.pickup import pick_up
from kiosk.hardware.door_bank import DoorState, UnlockTiming
from kiosk.hardware.door_map import DoorMap
from kiosk.hardware.protocols import BoardProtocol, eight_a
from kiosk.hardware.serial_board import SerialBankConfig, SerialBoardBank
from kiosk.monitor import record_reading
from kiosk.store import changes, doors, outbox
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import AllocationKind, to_db_time
from shared.clock import SystemClock
from shared.codes import PickupCode
from shared.events import DoorClosed
from shared.sizes import Size
from shared.states import AllocationStatus

SECRET = "kiosk-bench-code-secret-0123456789"
LOCATION = "loc-bench"
KIOSK = "kiosk-bench"
LOCKS_PER_BOARD = eight_a.MAX_LOCK  # 50: 1,000 doors are boards 1-20
SIZES = (Size.SMALL, Size.SMALL, Size.MEDIUM, Size.MEDIUM, Size.LARGE, Size.XLARGE)
GOAL_P99_MS = 5.0


def log(message: str) -> None:
    print(message, flush=True)


# --- timing hooks (subclasses; hardware_sim and kiosk are not edited) ----------------------------


class TimedSimulator(LockBoardSimulator):
    """The lock-board simulator, stamping each chunk of bytes as its pty thread receives it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.arrivals: list[tuple[int, bytes]] = []
        super().__init__(*args, **kwargs)

    def _on_bytes(self, data: bytes) -> None:
        # First thing in the simulator's thread, before the frame is even decoded.
        self.arrivals.append((time.perf_counter_ns(), data))
        super()._on_bytes(data)


class TimedBank(SerialBoardBank):
    """The production serial bank, noting when the pulse (after the commit) begins."""

    pulse_ns = 0

    async def _pulse(self, door: int) -> None:
        self.pulse_ns = time.perf_counter_ns()
        await super()._pulse(door)


class TimedStore(Store):
    """The production store, noting when each outer transaction began and committed."""

    def __init__(self, db: Database, hasher: CodeHasher, identity: KioskIdentity) -> None:
        super().__init__(db, hasher, identity)
        self.spans: list[tuple[int, int]] = []
        self.commit_starts: list[int] = []
        # Called by sqlite3 just before it runs each statement: stamps where COMMIT begins.
        db.conn.set_trace_callback(self._statement)

    def _statement(self, sql: str) -> None:
        if sql == "COMMIT":
            self.commit_starts.append(time.perf_counter_ns())

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        if self.db.conn.in_transaction:
            with super().transaction() as db:
                yield db
            return
        begin = time.perf_counter_ns()
        with super().transaction() as db:
            yield db
        self.spans.append((begin, time.perf_counter_ns()))


# --- statistics and machine -----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summary_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    values = sorted(ns / 1e6 for ns in samples_ns)
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "p50": round(percentile(values, 0.50), 4),
        "p90": round(percentile(values, 0.90), 4),
        "p99": round(percentile(values, 0.99), 4),
        "max": round(values[-1], 4),
        "min": round(values[0], 4),
    }


def show(name: str, s: dict[str, float]) -> None:
    log(
        f"  {name:<38} p50 {s['p50']:8.3f}  p90 {s['p90']:8.3f}  p99 {s['p99']:8.3f}"
        f"  max {s['max']:8.3f}  mean {s['mean']:8.3f} ms  (n={s['n']})"
    )


def file_system_of(path: Path) -> str:
    """The type of the file system holding ``path``, from /proc/mounts (longest mount prefix)."""
    target = str(path.resolve())
    best, kind = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) < 3:
                continue
            mount = parts[1].replace("\\040", " ")
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, kind = mount, parts[2]
    return kind


def machine(tmp_root: Path) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "tmp_dir": str(tmp_root),
        "tmp_fs": file_system_of(tmp_root),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- seeding --------------------------------------------------------------------------------------


def layout_for(door_count: int) -> dict[int, Size]:
    return {n: SIZES[(n - 1) % len(SIZES)] for n in range(1, door_count + 1)}


@dataclass
class Seeder:
    """Puts parcels in the store through the same `changes` API cloud sync uses."""

    store: Store
    layout: dict[int, Size]
    revision: int = 0
    serial: int = 0
    used_codes: set[str] = field(default_factory=set)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def fresh_code(self) -> PickupCode:
        while True:
            code = PickupCode.generate()
            if code.value not in self.used_codes:
                self.used_codes.add(code.value)
                return code

    def add(self, status: AllocationStatus, door: int | None, size: Size) -> PickupCode:
        self.revision += 1
        self.serial += 1
        now = datetime.now(UTC)
        code = self.fresh_code()
        update = changes.AllocationUpdate(
            allocation_id=f"bench-{self.serial:07d}",
            kind=AllocationKind.DELIVERY,
            barcode=f"PKG-BENCH-{self.serial:07d}",
            size=size,
            status=status,
            proposed_door=door,
            code=code,
            reservation_expires_at=now + timedelta(days=2),
            pickup_expires_at=now + timedelta(days=7) if door is not None else None,
        )
        result = changes.apply_allocation(self.store, update, self.revision, now)
        if result.outcome is not changes.ApplyOutcome.APPLIED or result.reason:
            raise RuntimeError(f"seeding {update.allocation_id} failed: {result}")
        return code

    def fill_doors(self, door_numbers: Sequence[int]) -> dict[int, PickupCode]:
        """One deposited parcel with its own code in each door, in one transaction."""
        with self.store.transaction():
            return {
                door: self.add(AllocationStatus.DEPOSITED, door, self.layout[door])
                for door in door_numbers
            }

    def reserve(self, count: int) -> None:
        """Parcels on their way (codes issued, no door yet), in one transaction."""
        with self.store.transaction():
            for _ in range(count):
                self.add(AllocationStatus.RESERVED, None, self.rng.choice(SIZES))


def open_seeded_store(
    path: Path, door_count: int, parcels: int, cls: type[Store] = Store
) -> tuple[Store, Seeder, dict[int, PickupCode]]:
    store = cls.open(path, CodeHasher(SECRET), KioskIdentity(LOCATION, KIOSK))
    layout = layout_for(door_count)
    with store.transaction() as db:
        doors.sync_layout(db, layout, datetime.now(UTC))
    seeder = Seeder(store, layout)
    codes = seeder.fill_doors(sorted(layout))
    seeder.reserve(max(0, parcels - door_count))
    return store, seeder, codes


# --- part 1: pickup to unlock frame ---------------------------------------------------------------


def unlock_frame_arrival(sim: TimedSimulator, start_index: int, frame: bytes) -> int:
    """When the last byte of ``frame`` reached the simulator, looking from ``start_index`` on."""
    received = b""
    for stamp, chunk in sim.arrivals[start_index:]:
        received += chunk
        if frame in received:
            return stamp
    raise RuntimeError(f"the unlock frame {frame.hex(' ')} never reached the simulator")


def baseline_commit(store: TimedStore, door: int) -> tuple[int, int]:
    """One outbox insert and one door update, committed durably.

    Returns:
        The wall time from before ``BEGIN IMMEDIATE`` to after ``COMMIT``, and of the ``COMMIT``
        statement alone, in ns.
    """
    now = datetime.now(UTC)
    store.commit_starts.clear()
    started = time.perf_counter_ns()
    with store.transaction() as db:
        outbox.append_event(db, DoorClosed(door=door), now)
        db.execute("UPDATE doors SET updated_at = ? WHERE number = ?", [to_db_time(now), door])
    ended = time.perf_counter_ns()
    return ended - started, ended - store.commit_starts[-1]


async def latency_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    door_count = args.doors
    boards = [
        (board, min(LOCKS_PER_BOARD, door_count - (board - 1) * LOCKS_PER_BOARD))
        for board in range(1, (door_count - 1) // LOCKS_PER_BOARD + 2)
    ]
    door_map = DoorMap.sequential(boards)
    db_path = tmp / "kiosk-latency.db"
    log(f"seeding {db_path}: {door_count} doors, {args.parcels} parcels ...")
    started = time.perf_counter()
    store, seeder, codes = open_seeded_store(db_path, door_count, args.parcels, TimedStore)
    assert isinstance(store, TimedStore)
    log(f"  seeded in {time.perf_counter() - started:.1f} s")

    sim = TimedSimulator(BoardProtocol.EIGHT_A, dict(boards), spring_delay_s=0.0)
    sim.start()
    bank = TimedBank(
        SerialBankConfig(port=sim.path, protocol=BoardProtocol.EIGHT_A, door_map=door_map),
        UnlockTiming(open_timeout_s=1.0, poll_interval_s=0.01),
    )
    ctx = FlowContext(store, bank, SystemClock(), FlowRules())
    rng = random.Random(11)

    total = args.warmup + args.pickups
    window, base, base_commit, to_tx, tx_work, tx_commit, tx_to_pulse, serial, full = (
        [] for _ in range(9)
    )
    not_opened = 0
    done = 0
    round_no = 0
    log(
        f"pickups: {args.warmup} warm-up + {args.pickups} measured, each preceded by one"
        " baseline commit"
    )
    try:
        while done < total:
            round_no += 1
            order = sorted(codes)
            rng.shuffle(order)
            order = order[: total - done]
            for door in order:
                base_ns, base_commit_ns = baseline_commit(store, door)
                where = door_map.address(door)
                frame = eight_a.encode_open(where.board, where.lock)
                mark = len(sim.arrivals)
                store.spans.clear()
                store.commit_starts.clear()
                t0 = time.perf_counter_ns()
                result = await pick_up(ctx, codes[door].value)
                t_end = time.perf_counter_ns()
                t_frame = unlock_frame_arrival(sim, mark, frame)
                if result.doors != (door,):
                    raise RuntimeError(f"pickup for door {door} opened {result.doors}")
                if not result.all_opened:
                    not_opened += 1
                done += 1
                if done <= args.warmup:
                    continue
                # The pickup's own transaction: the first that began after t0 (the one that
                # records the result comes after the pulse).
                tx_begin, tx_end = next(s for s in store.spans if s[0] >= t0)
                commit_start = store.commit_starts[0]
                if not tx_begin <= commit_start <= tx_end <= bank.pulse_ns <= t_frame:
                    raise RuntimeError("stamps out of order: begin, commit, pulse, frame")
                window.append(t_frame - t0)
                base.append(base_ns)
                base_commit.append(base_commit_ns)
                to_tx.append(tx_begin - t0)
                tx_work.append(commit_start - tx_begin)
                tx_commit.append(tx_end - commit_start)
                tx_to_pulse.append(bank.pulse_ns - tx_end)
                serial.append(t_frame - bank.pulse_ns)
                full.append(t_end - t0)
                if (done - args.warmup) % 250 == 0:
                    log(f"  {done - args.warmup} pickups measured")
            if done < total:
                codes = refill(ctx, sim, door_map, seeder, list(codes))
    finally:
        await bank.aclose()
        sim.stop()
        store.close()

    figures = {
        "pickup_to_unlock_frame_ms": summary_ms(window),
        "baseline_commit_ms": summary_ms(base),
        "baseline_commit_statement_ms": summary_ms(base_commit),
        "breakdown_ms": {
            "before_transaction": summary_ms(to_tx),
            "transaction_work_before_commit": summary_ms(tx_work),
            "commit_statement": summary_ms(tx_commit),
            "commit_to_pulse": summary_ms(tx_to_pulse),
            "pulse_to_frame_at_board": summary_ms(serial),
        },
        "full_pick_up_call_ms": summary_ms(full),
        "rounds": round_no,
        "not_opened": not_opened,
        "protocol": "8a80",
        "boards": len(boards),
    }
    w, b = figures["pickup_to_unlock_frame_ms"], figures["baseline_commit_ms"]
    figures["ratio_to_baseline"] = {
        q: round(w[q] / b[q], 2) if b[q] else None for q in ("p50", "p90", "p99", "max")
    }
    figures["goal_p99_ms"] = GOAL_P99_MS
    figures["goal_met"] = w["p99"] < GOAL_P99_MS
    return figures


def refill(
    ctx: FlowContext,
    sim: TimedSimulator,
    door_map: DoorMap,
    seeder: Seeder,
    emptied: list[int],
) -> dict[int, PickupCode]:
    """Shuts every door (completing its pickup, as the monitor would) and refills them."""
    for door in emptied:
        where = door_map.address(door)
        sim.door(where.board, where.lock).close()
    with ctx.store.transaction():
        for door in emptied:
            record_reading(ctx, door, DoorState.of(is_open=False))
    log(f"  round done: {len(emptied)} doors shut and refilled")
    return seeder.fill_doors(sorted(emptied))


# --- part 2: the daemon's memory and cold start ---------------------------------------------------


def daemon_available() -> bool:
    return importlib.util.find_spec("kiosk.daemon") is not None and (
        importlib.util.find_spec("kiosk.cli") is not None
    )


def write_daemon_config(folder: Path, door_count: int) -> Path:
    layout_lines = [f'"{door}" = "{size.value}"' for door, size in layout_for(door_count).items()]
    config = folder / "kiosk.toml"
    config.write_text(
        "\n".join(
            [
                "[kiosk]",
                f'location_id = "{LOCATION}"',
                f'kiosk_id = "{KIOSK}"',
                'database = "kiosk.db"',
                f'code_secret = "{SECRET}"',
                "",
                "[layout]",
                *layout_lines,
                "",
                "[doors]",
                'backend = "fake"',
                "",
                "[doors.fake]",
                f"doors = {door_count}",
                "",
            ]
        )
    )
    return config


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) of a process, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_line(process: subprocess.Popen[str], prefix: str, timeout_s: float) -> str:
    """Waits for a stdout line starting with ``prefix``; a thread keeps draining the pipe after.

    Raises:
        RuntimeError: no such line within ``timeout_s`` (the last lines are in the message).
    """
    found = threading.Event()
    lines: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.startswith(prefix) and not found.is_set():
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(timeout_s):
        tail = "\n    ".join(lines[-10:])
        raise RuntimeError(f"no {prefix!r} line within {timeout_s} s; output:\n    {tail}")
    return next(line for line in lines if line.startswith(prefix))


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9


def start_daemon(config: Path) -> tuple[subprocess.Popen[str], float, str]:
    command = [sys.executable, "-c", "from kiosk.cli import main; main()", "run"]
    script = Path(sys.executable).parent / "locker-kiosk"
    if script.exists():
        command = [str(script), "run"]
    command += ["--config", str(config)]
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and console script
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=config.parent,
    )
    try:
        line = wait_for_line(process, "ready", timeout_s=120)
    except BaseException:
        stop(process)
        raise
    return process, time.perf_counter() - started, line


def time_python(code: str) -> float:
    """Wall time of ``python -c code`` with this interpreter, in seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our own snippets
    return time.perf_counter() - started


def python_sleep_memory() -> dict[str, int]:
    """VmRSS and VmHWM of a bare ``python -c 'import time; time.sleep(9)'`` after 3 s."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(9)"])
    try:
        time.sleep(3)
        return proc_status(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def seconds(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "all": [round(x, 4) for x in values],
    }


def daemon_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    folder = tmp / "daemon"
    folder.mkdir()
    config = write_daemon_config(folder, args.doors)
    log(f"seeding {folder / 'kiosk.db'}: {args.doors} doors, {args.parcels} parcels ...")
    store, _, _ = open_seeded_store(folder / "kiosk.db", args.doors, args.parcels)
    store.close()

    # Each daemon start is followed by the two bare-interpreter starts, so all three are timed
    # under the same load on this shared machine.
    cold: list[float] = []
    bare: list[float] = []
    imports: list[float] = []
    ready_line = ""
    process: subprocess.Popen[str] | None = None
    try:
        for n in range(1, args.starts + 1):
            process, elapsed, ready_line = start_daemon(config)
            cold.append(elapsed)
            if n < args.starts:
                code = stop(process)
                process = None
                if code != 0:
                    raise RuntimeError(f"the daemon exited with {code} on SIGTERM")
            bare.append(time_python("pass"))
            imports.append(time_python("import kiosk.cli, kiosk.daemon"))
            log(
                f"  start {n}: ready after {elapsed * 1000:.0f} ms (python -c pass"
                f" {bare[-1] * 1000:.0f} ms, importing kiosk.cli + kiosk.daemon"
                f" {imports[-1] * 1000:.0f} ms)"
            )
        assert process is not None
        log(f"  idle for {args.idle_s:g} s ...")
        cpu_before = cpu_seconds(process.pid)
        time.sleep(args.idle_s)
        memory = proc_status(process.pid)
        idle_cpu = cpu_seconds(process.pid) - cpu_before
        exit_code = stop(process)
        process = None
    finally:
        if process is not None:
            stop(process)

    sleeper = python_sleep_memory()
    baselines = {
        "python_start_s": seconds(bare),
        "python_import_daemon_s": seconds(imports),
        "python_sleep_rss_kib": sleeper["VmRSS"],
        "python_sleep_hwm_kib": sleeper["VmHWM"],
    }
    return {
        "doors": args.doors,
        "parcels": args.parcels,
        "backend": "fake",
        "ready_line": ready_line,
        "cold_start_s": seconds(cold),
        "idle_s": args.idle_s,
        "rss_kib": memory["VmRSS"],
        "hwm_kib": memory["VmHWM"],
        "rss_anon_kib": memory.get("RssAnon"),
        "rss_file_kib": memory.get("RssFile"),
        "idle_cpu_percent": round(100 * idle_cpu / args.idle_s, 1),
        "exit_code_on_sigterm": exit_code,
        "baseline": baselines,
        "rss_over_bare_python_kib": memory["VmRSS"] - baselines["python_sleep_rss_kib"],
        "db_size_kib": round((folder / "kiosk.db").stat().st_size / 1024),
    }


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Kiosk benchmark: pickup code to unlock frame (with the SQLite commit alone as the "
            "baseline), and the daemon's idle memory and cold start. Progress on stdout; the "
            "last line is one JSON object with every figure."
        )
    )
    parser.add_argument("--pickups", type=int, default=5000, help="measured pickups (5000)")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted pickups first (50)")
    parser.add_argument(
        "--doors", type=int, default=1000, help="doors, 50 per 8A/80 board (1000, at most 1600)"
    )
    parser.add_argument(
        "--parcels", type=int, default=5000, help="parcels seeded, one per door deposited (5000)"
    )
    parser.add_argument("--starts", type=int, default=5, help="daemon cold starts (5)")
    parser.add_argument("--idle-s", type=float, default=5.0, help="idle time before RSS (5)")
    parser.add_argument("--skip-daemon", action="store_true", help="only the latency part")
    parser.add_argument(
        "--tmp-dir", type=Path, default=None, help="where the databases go (the system's tmp)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.doors <= eight_a.MAX_BOARD * LOCKS_PER_BOARD:
        parser.error(f"--doors must be 1-{eight_a.MAX_BOARD * LOCKS_PER_BOARD}")
    if args.parcels < args.doors:
        parser.error("--parcels must be at least --doors (one deposited parcel per door)")
    if args.pickups < 1 or args.warmup < 0 or args.starts < 1 or args.idle_s <= 0:
        parser.error("--pickups and --starts must be positive, --warmup not negative")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-bench-", dir=args.tmp_dir))
    report: dict[str, Any] = {"bench": "kiosk", "machine": machine(tmp)}
    report["load_average_start"] = load_average()
    log(f"machine: {json.dumps(report['machine'])}")
    log(f"load average (1, 5, 15 min): {report['load_average_start']}")
    try:
        started = time.perf_counter()
        latency = asyncio.run(latency_part(args, tmp))
        report["latency"] = latency
        log(f"latency part took {time.perf_counter() - started:.0f} s")
        show("pickup -> unlock frame at the board", latency["pickup_to_unlock_frame_ms"])
        show("baseline: SQLite commit alone", latency["baseline_commit_ms"])
        show("  of which the COMMIT statement", latency["baseline_commit_statement_ms"])
        for name, s in latency["breakdown_ms"].items():
            show(f"  {name}", s)
        show("full pick_up call (incl. door-open poll)", latency["full_pick_up_call_ms"])
        log(f"  ratio pickup/baseline: {latency['ratio_to_baseline']}")
        verdict = "MET" if latency["goal_met"] else "NOT MET"
        log(f"  goal p99 < {GOAL_P99_MS} ms: {verdict}")
        if args.skip_daemon:
            report["daemon"] = {"skipped": "--skip-daemon"}
        elif not daemon_available():
            report["daemon"] = {"skipped": "kiosk.daemon / kiosk.cli not present"}
            log("daemon part skipped: kiosk.daemon / kiosk.cli not present")
        else:
            daemon = daemon_part(args, tmp)
            report["daemon"] = daemon
            log(
                f"daemon: cold start median {daemon['cold_start_s']['median'] * 1000:.0f} ms"
                f" (bare python {daemon['baseline']['python_start_s']['median'] * 1000:.0f} ms,"
                " python importing kiosk.cli + kiosk.daemon"
                f" {daemon['baseline']['python_import_daemon_s']['median'] * 1000:.0f} ms);"
                f" idle RSS {daemon['rss_kib'] / 1024:.1f} MiB, HWM {daemon['hwm_kib'] / 1024:.1f}"
                f" MiB (bare python {daemon['baseline']['python_sleep_rss_kib'] / 1024:.1f} MiB);"
                f" idle CPU {daemon['idle_cpu_percent']} %"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_average_end"] = load_average()
    log(f"load average (1, 5, 15 min): {report['load_average_end']}")
    print(json.dumps(report, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
