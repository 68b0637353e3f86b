"""The demo's terminal: whether there is one, where its narration and logs go, typed scans.

With the touchscreen, the kiosk's UI owns the terminal, so what the demo says and every log
record go to a file. Headless, ``scan CODE`` lines on standard input reach the simulated scanner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path


def on_a_terminal() -> bool:
    """Whether standard input, output and error are all a terminal."""
    return sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()


class FileLines:
    """The demo's narration (doors opening and shutting, the READY text) appended to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")


def log_to(path: Path) -> None:
    """Sends every log record to ``path`` instead of the terminal (the touchscreen's)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # amqtt's session machine narrates every state change at INFO.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def listen_for_scans(
    scan: Callable[[str], None], out: Callable[[str], None], stop: asyncio.Event
) -> asyncio.Task[None] | None:
    """Reads ``scan CODE`` lines from standard input (until end of input or ``stop``).

    Returns:
        The task that stops listening once ``stop`` is set (cancel it to stop at once), or
        None when standard input cannot be watched.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
    except (OSError, ValueError):
        return None
    buffer = bytearray()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            return
        buffer.extend(data)
        while b"\n" in buffer:
            raw, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            command(raw.decode(errors="replace").strip(), scan, out)

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError, NotImplementedError):
        return None

    async def remove() -> None:
        await stop.wait()

    def done(_: asyncio.Task[None]) -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)

    task = asyncio.create_task(remove())
    task.add_done_callback(done)
    return task


def command(line: str, scan: Callable[[str], None], out: Callable[[str], None]) -> None:
    """Carries out one typed line: ``scan CODE`` presents CODE to the scanner."""
    if not line:
        return
    verb, _, rest = line.partition(" ")
    if verb == "scan" and rest.strip():
        scan(rest.strip())
        out(f"scanned {rest.strip()}")
    else:
        out("commands: scan CODE (a pickup code or a parcel barcode); Ctrl-C stops")
