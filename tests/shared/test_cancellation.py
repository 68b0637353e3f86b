"""A stop request survives code that swallows `CancelledError` (as Python 3.11's `wait_for` may)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.cancellation import cancel_and_wait, raise_if_cancelling


async def _swallows_one_cancel(started: asyncio.Event, went_on: asyncio.Event) -> None:
    started.set()
    with contextlib.suppress(asyncio.CancelledError):  # what a racing `wait_for` does
        await asyncio.sleep(10)
    went_on.set()
    raise_if_cancelling()
    await asyncio.sleep(10)  # a loop that went round again would sleep here for ever


async def test_a_swallowed_cancellation_is_raised_again() -> None:
    started, went_on = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(_swallows_one_cancel(started, went_on))
    await started.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert task in done
    assert task.cancelled()
    assert went_on.is_set()


async def test_raise_if_cancelling_is_silent_when_nobody_asked_to_stop() -> None:
    raise_if_cancelling()  # no error: the test goes on


async def test_cancel_and_wait_stops_every_task_and_retrieves_their_errors() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    sleeper = asyncio.create_task(asyncio.sleep(10))
    await cancel_and_wait([failed, sleeper])
    assert sleeper.cancelled()
    assert isinstance(failed.exception(), ValueError)


async def test_cancel_and_wait_passes_on_the_callers_own_cancellation() -> None:
    # A child that takes a while to stop; the caller is cancelled meanwhile and must stop too
    # (awaiting each child under suppress(CancelledError) swallowed this).
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await release.wait()

    child = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    caller = asyncio.create_task(cancel_and_wait([child]))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await asyncio.wait([child], timeout=2)
    assert child.cancelled()
