"""The database away for a moment (a failover, a restart, a network cut): 503, not 500.

While PostgreSQL's primary changes (Patroni promotes the standby, the connection string's next
host takes over), requests fail with a connection error, a pool that cannot hand out a
connection in time, or a write refused by a node that is now read-only. None of these is a bug
of the request or of the service: the carrier is told to retry, with ``Retry-After`` and the
machine-readable code ``database_unavailable``. Nothing was half-written: each unit of work is
one transaction, rolled back by PostgreSQL when its connection dies.

The pool drops the connections that failed (`cloud.store.database.open_pool` checks each one
it hands out), so the service recovers without a restart once the database answers again.
"""

from __future__ import annotations

import logging

import psycopg
import psycopg_pool
from fastapi import Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a carrier is asked to wait: about one Patroni loop (its failover takes ~10-30 s)."""

# What a database away for a moment raises: a dead or refused connection, no connection free in
# time, or a write on a node that is a standby now.
UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    psycopg.errors.ReadOnlySqlTransaction,
)


async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return JSONResponse(
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        content={
            "error": {
                "code": "database_unavailable",
                "message": "the service's database is not answering for a moment; retry later",
                "details": {"retry_after_seconds": RETRY_AFTER_SECONDS},
            }
        },
    )
