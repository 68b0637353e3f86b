"""Stopping asyncio tasks so that a stop request is never lost.

Both long-running loops (the kiosk's sync client, the cloud's sync worker) reconnect forever
and are stopped by cancelling them. On Python 3.11, `asyncio.wait_for` returns normally when
its inner future finishes in the same loop iteration as the cancellation arrives, and aiomqtt
awaits its CONNACK and DISCONNECT that way: a cancel that lands there is swallowed, the
reconnect loop goes round again, and whoever awaits the task waits forever (seen: about one
stop in twenty with a fast-reconnecting kiosk hung the test suite). The task still *knows* it
was asked to stop (`Task.cancelling()` stays above zero until someone calls `uncancel`), so
the loops check it at every turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any


def raise_if_cancelling() -> None:
    """Raises `asyncio.CancelledError` if the current task was asked to stop.

    For a loop that catches the errors of a library which may have swallowed the cancellation.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Collection[asyncio.Future[Any]]) -> None:
    """Cancels ``tasks`` and waits until each has finished, whatever each one raised.

    Unlike awaiting each task under ``suppress(CancelledError)``, a cancellation of the *caller*
    during the wait is not swallowed: it propagates. The tasks' own errors are retrieved (so
    asyncio does not log them as never retrieved) and dropped: the caller is stopping them.
    """
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()
