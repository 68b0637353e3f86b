"""The README's first command, headless, as a subprocess: ready, a QR pickup at the simulated
scanner opens the parcel's door, the cloud shows the parcel picked up, SIGINT stops everything.

Run on embedded defaults (an embedded PostgreSQL, the in-process broker), and against the
machine's PostgreSQL and Mosquitto when CI names them (LOCKER_TEST_DATABASE_URL and
LOCKER_TEST_MQTT_URL).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
PARCEL = re.compile(
    r"^\s+(?P<package>\S+) for (?P<customer>\S+)\s+locker\s+(?P<door>\d+)\s+(?P<status>\S+)"
    r"\s+pickup code (?P<code>\S+)\s+allocation (?P<allocation>\S+)"
)


class Demo:
    """``locker-demo --headless`` in a subprocess, its stdout read line by line."""

    def __init__(self, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKER_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo", "--headless", "--port", "0", "--close-after", "1",
             *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env | {"PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.lines: list[str] = []
        self._pending = b""

    def read_until(self, pattern: str, timeout: float) -> str:
        """The first line (from now) matching ``pattern``.

        Reads the pipe's file descriptor directly: ``select`` on it says nothing of lines
        already pulled into a buffered reader, so ``readline`` after ``select`` could leave the
        very line awaited sitting in a buffer while ``select`` waits for more output.
        """
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._pending:
                raw, _, self._pending = self._pending.partition(b"\n")
                line = raw.decode(errors="replace") + "\n"
                self.lines.append(line)
                if re.search(pattern, line):
                    return line
            if time.monotonic() >= deadline:
                break
            readable, _, _ = select.select([fd], [], [], 0.5)
            if readable:
                data = os.read(fd, 65536)
                if not data:
                    break
                self._pending += data
        raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(self.lines[-60:]))

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def children(self) -> set[int]:
        """The pids of this process's children, and of the embedded PostgreSQL if any."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.add(int(stat.parent.name))
        data = next((ln.split()[-1] for ln in self.lines if ln.strip().startswith("data ")), None)
        if data is not None:
            pid_file = Path(data) / "postgres" / "pgdata" / "postmaster.pid"
            if pid_file.exists():
                found.add(int(pid_file.read_text().splitlines()[0]))
        return found

    def kill(self) -> None:
        """Ends the demo after a failed test, and what it started (its embedded PostgreSQL)."""
        if self.process.poll() is None:
            left = self.children()
            self.process.kill()
            self.process.communicate()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cloud_status_once_picked_up(
    base: str, allocation_id: str, *, between: Callable[[], object], within_s: float = 30
) -> str | None:
    """The allocation's status in the cloud, polled (``between`` the polls) until picked up."""
    deadline = time.monotonic() + within_s
    status = None
    with httpx.Client(base_url=base, timeout=10) as http:
        while time.monotonic() < deadline:
            r = http.get(
                f"/api/v1/allocations/{allocation_id}",
                headers={"Authorization": "Bearer demo-carrier-key"},
            )
            assert r.status_code == 200, r.text
            status = r.json()["status"]
            if status == "picked_up":
                break
            between()
    return status


def run_pickup(demo: Demo, *, embedded: bool) -> None:
    ready = demo.read_until(r"^READY ", READY_TIMEOUT_S)
    base = ready.split()[1]
    parcels = [m for ln in demo.lines if (m := PARCEL.match(ln))]
    deposited = [m for m in parcels if m["status"] == "deposited"]
    assert len(deposited) == 3, "".join(demo.lines)
    # bob's parcel: his code opens one door (alice's opens her two)
    [bob] = [m for m in deposited if m["customer"] == "bob"]
    children = demo.children()
    if embedded:  # at least the embedded PostgreSQL
        assert children, "".join(demo.lines)

    demo.send(f"scan {bob['code']}")
    demo.read_until(rf"^door {bob['door']} opened", 20)
    status = cloud_status_once_picked_up(base, bob["allocation"], between=lambda: time.sleep(0.2))
    assert status == "picked_up", "".join(demo.lines)
    # The same code again is refused, and headless the demo says why (issue 11).
    demo.send(f"scan {bob['code']}")
    demo.read_until(r"^scan refused \(code_used\): This code was already used", 20)

    demo.process.send_signal(signal.SIGINT)
    out, _ = demo.process.communicate(timeout=STOP_TIMEOUT_S)
    text = "".join(demo.lines) + (demo._pending + out).decode(errors="replace")
    assert demo.process.returncode == 0, text
    assert "demo stopped" in text
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if _alive(pid)] == [], text


def test_demo_on_embedded_defaults() -> None:
    demo = Demo()
    try:
        run_pickup(demo, embedded=True)
    finally:
        demo.kill()


@pytest.fixture
def empty_database() -> Iterator[str]:
    server = os.environ.get("LOCKER_TEST_DATABASE_URL")
    if not server:
        pytest.skip("LOCKER_TEST_DATABASE_URL names no PostgreSQL server")
    name = f"locker_demo_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_demo_against_servers_given_by_url(empty_database: str) -> None:
    broker = os.environ.get("LOCKER_TEST_MQTT_URL")
    if not broker:
        pytest.skip("LOCKER_TEST_MQTT_URL names no broker")
    demo = Demo("--database-url", empty_database, "--mqtt-url", broker)
    try:
        run_pickup(demo, embedded=False)
    finally:
        demo.kill()
