"""Gathering concurrent reservation requests into batches (`cloud.parcels.reserve.reserve_many`).

``workers`` batches may be in flight at once, each on its own pooled connection. A worker takes
every request waiting when it is free (up to ``max_batch``), so a lone request is never
delayed: batches form only when requests arrive faster than one transaction completes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloud import metrics
from cloud.parcels.requests import AllocationRequest
from cloud.parcels.reserve import Job, Result, reserve_many
from cloud.store.database import Pool


@dataclass
class _Waiting:
    job: Job
    done: asyncio.Future[None]


@dataclass
class AllocationBatcher:
    """Collects concurrent allocation requests and runs them in batches.

    ``workers`` batches may be in flight at once, each on its own pooled
    connection. A worker takes every request waiting when it is free (up to
    ``max_batch``), so a lone request is never delayed: batches form only when
    requests arrive faster than one transaction completes.
    """

    pool: Pool
    workers: int = 4
    max_batch: int = 64
    _queue: asyncio.Queue[_Waiting] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"allocation-batch-{i}")
            for i in range(self.workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():
            waiting = self._queue.get_nowait()
            if not waiting.done.done():
                waiting.done.set_exception(RuntimeError("the service is shutting down"))

    async def reserve(
        self, *, carrier_id: str, request: AllocationRequest, now: datetime, hold: timedelta
    ) -> Result:
        """As `cloud.parcels.reserve.reserve`, on a connection of the batcher's choosing."""
        job = Job(carrier_id=carrier_id, request=request, now=now, hold=hold)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Waiting(job, done))
        await done
        result = job.result
        if isinstance(result, BaseException):
            metrics.ALLOCATIONS.labels(getattr(result, "code", "error")).inc()
            raise result
        assert result is not None
        metrics.ALLOCATIONS.labels("reserved" if result[1] else "existing").inc()
        return result

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # A request whose caller went away (client disconnected) is not sent.
            live = [w for w in batch if not w.done.done()]
            try:
                if live:
                    metrics.ALLOCATION_BATCH.observe(len(live))
                    async with self.pool.connection() as conn:
                        await reserve_many(conn, [w.job for w in live])
            except Exception as exc:  # e.g. no connection: every caller gets the error
                for w in live:
                    w.job.result = exc
            finally:
                # Also when this worker is cancelled (shutdown) halfway through a batch.
                for w in live:
                    if not w.done.done():
                        if w.job.result is None:
                            w.done.set_exception(RuntimeError("the service is shutting down"))
                        else:
                            w.done.set_result(None)
