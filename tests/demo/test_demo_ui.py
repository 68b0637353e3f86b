"""The README's first command as a new user runs it: in a terminal, with the kiosk's touchscreen.

The demo runs on a pseudo-terminal of 100x30 cells (the 800x480 touchscreen). The test waits for
the home screen with the demo's codes, picks up bob's parcel by pressing 1 and typing his code on
the keypad, checks the cloud shows it picked up, then presses Ctrl+C: the demo stops cleanly
(exit 0), the terminal leaves the touchscreen's alternate screen, and no log line was drawn on
the screen.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from .test_demo import (
    PARCEL,
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    _alive,
    cloud_status_once_picked_up,
)

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")
LEAVE_ALTERNATE_SCREEN = b"\x1b[?1049l"


class TerminalDemo:
    """``locker-demo`` with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKER_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "demo", "--port", "0", "--close-after", "1"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env | {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"},
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""

    def read(self, timeout: float) -> None:
        """Reads what the demo drew within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if readable:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the demo closed the terminal
                    return
                if not data:
                    return
                self.output += data

    def text(self) -> str:
        return ANSI.sub(b"", self.output).decode(errors="replace")

    def read_until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.text()):
                return found
            self.read(0.3)
        raise AssertionError(f"never drawn: {pattern!r}\n{self.text()[-3000:]}")

    def press(self, keys: str) -> None:
        for key in keys:
            os.write(self.master, key.encode())
            self.read(0.15)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)


def _wait_for_ready(log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        if re.search(r"^READY ", text, re.MULTILINE):
            return text
        time.sleep(0.3)
    raise AssertionError(f"the demo never got ready; its log:\n{text[-3000:]}")


def test_a_new_user_picks_up_a_parcel_at_the_touchscreen_and_ctrl_c_stops_the_demo() -> None:
    demo = TerminalDemo()
    try:
        log = Path(demo.read_until(r"\(log: (\S+)\)", 60)[1])
        narration = _wait_for_ready(log, READY_TIMEOUT_S)
        base = re.search(r"^READY (\S+)", narration, re.MULTILINE)[1]  # type: ignore[index]
        parcels = [m for line in narration.splitlines() if (m := PARCEL.match(line))]
        [bob] = [m for m in parcels if m["customer"] == "bob"]

        # The home screen tells a new user which codes to try.
        demo.read_until(r"Demo: pick up with code", 30)
        assert bob["code"] in demo.text()
        children = _descendants(demo.process.pid)
        postmaster = log.parent / "postgres" / "pgdata" / "postmaster.pid"
        children.add(int(postmaster.read_text().splitlines()[0]))  # the embedded PostgreSQL

        demo.press("1")
        demo.read_until(r"Pickup code", 10)
        demo.press(bob["code"] + "\r")
        demo.read_until(rf"Locker {bob['door']} is open", 20)

        # Reading the terminal between polls: a demo whose output nobody reads would block.
        status = cloud_status_once_picked_up(
            base, bob["allocation"], between=lambda: demo.read(0.2)
        )
        assert status == "picked_up"

        demo.press("\x03")  # Ctrl+C, as a key: the touchscreen has the terminal in raw mode
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while demo.process.poll() is None and time.monotonic() < deadline:
            demo.read(0.2)
        demo.read(0.5)
        assert demo.process.returncode == 0, demo.text()[-3000:]
        assert LEAVE_ALTERNATE_SCREEN in demo.output
        assert "demo stopped" in demo.text()
        # Log records went to the log file, never onto the touchscreen.
        assert " INFO " not in demo.text()
        assert " WARNING " not in demo.text()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        demo.kill()


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found
