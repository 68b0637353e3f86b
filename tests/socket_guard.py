"""A guard that fails the test which leaks a socket, deterministically.

A socket nobody closed is only noticed when the garbage collector finalises it: Python then
warns ``ResourceWarning: unclosed <socket.socket ...>`` (or ``unclosed transport``), and under
``filterwarnings = error`` pytest fails whichever test happens to be running at that moment, in
any folder, now and then. The guard moves the failure to the test that made the leak:

1. after the test and all its fixtures are torn down, it collects garbage while recording
   warnings, so an unreachable open socket is finalised now, and its warning fails this test
   (with where the socket was made when Python runs with ``-X tracemalloc``);
2. it then compares the process's open sockets (``/proc/self/fd``) with those open before the
   test: a socket still open and still referenced is a leak too (a client never closed).

Linux only (``/proc``); elsewhere the second check is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import tracemalloc
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_FD_DIR = Path("/proc/self/fd")
SETTLE_S = 2.0
"""How long closings already under way (an aborted transport closes on a later loop turn, a
client's socket after its DISCONNECT) may take before an open socket counts as leaked."""


def open_sockets() -> set[str]:
    """The ``socket:[inode]`` names of this process's open sockets (empty off Linux)."""
    if not _FD_DIR.is_dir():
        return set()
    found: set[str] = set()
    for entry in os.scandir(_FD_DIR):
        try:
            target = os.readlink(entry.path)
        except OSError:  # closed while listing (the listing's own descriptor among them)
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def _where_made(obj: object) -> str:
    trace = tracemalloc.get_object_traceback(obj)
    if trace is None:
        return "  (run python -X tracemalloc=20 to see where it was made)"
    return "\n".join("  " + line for line in trace.format())


def _describe_live(leaked: set[str]) -> list[str]:
    lines: list[str] = []
    for obj in gc.get_objects():
        if not isinstance(obj, socket.socket) or obj.fileno() < 0:
            continue
        try:
            name = os.readlink(_FD_DIR / str(obj.fileno()))
        except OSError:
            continue
        if name in leaked:
            lines.append(f"{obj!r}\n{_where_made(obj)}")
    return lines


@contextlib.asynccontextmanager
async def no_socket_left() -> AsyncIterator[None]:
    """Fails the test when the block leaves a socket open (see the module's docstring).

    Used by an autouse fixture in each sync test folder's conftest, so that it wraps the test
    and the teardown of all its other fixtures.
    """
    before = open_sockets()
    yield
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while True:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            gc.collect()
        unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
        if unclosed:
            pytest.fail(
                "the test leaked what it never closed:\n"
                + "\n".join(f"{w.message}\n{_where_made(w.source)}" for w in unclosed),
                pytrace=False,
            )
        leaked = open_sockets() - before
        if not leaked or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    if leaked:
        described = _describe_live(leaked)
        pytest.fail(
            f"the test left {len(leaked)} socket(s) open:\n"
            + "\n".join(described or sorted(leaked)),
            pytrace=False,
        )
