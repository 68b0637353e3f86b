"""Operator accounts, their console sessions, and the audit of their actions (`cloud.ops`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.errors import UniqueViolation

from cloud.store.database import Conn


@dataclass(frozen=True, slots=True)
class Operator:
    """A row of ``operators`` (without its password hash, which only login reads)."""

    username: str
    role: str
    active: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session with its operator."""

    username: str
    role: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """A row of ``operator_actions``."""

    action_id: int
    username: str
    action: str
    location_id: str | None
    door_number: int | None
    detail: dict[str, Any]
    at: datetime


class OperatorError(Exception):
    """A refused change to operator accounts (from the command line: not an API error)."""


class OperatorExists(OperatorError):
    pass


class OperatorNotFound(OperatorError):
    pass


_OPERATOR = "username, role, active, failed_logins, locked_until, created_at, last_login_at"


async def create(
    conn: Conn, *, username: str, password_hash: str, role: str, now: datetime
) -> Operator:
    try:
        cur = await conn.execute(
            "INSERT INTO operators (username, password_hash, role, created_at)"
            " VALUES (%s, %s, %s, %s) RETURNING " + _OPERATOR,
            (username, password_hash, role, now),
        )
    except UniqueViolation:
        raise OperatorExists(f"there is already an operator {username!r}") from None
    row = await cur.fetchone()
    assert row is not None
    return Operator(**row)


async def update(
    conn: Conn,
    username: str,
    *,
    password_hash: str | None = None,
    role: str | None = None,
    active: bool | None = None,
    unlock: bool = False,
) -> Operator:
    """Changes what is given; a new password or ``unlock`` also lifts a lockout.

    Ends the operator's sessions, so that they log in again under the new terms.
    """
    cur = await conn.execute(
        "UPDATE operators SET password_hash = coalesce(%(hash)s, password_hash),"
        " role = coalesce(%(role)s, role), active = coalesce(%(active)s, active),"
        " failed_logins = CASE WHEN %(hash)s IS NULL AND NOT %(unlock)s"
        "  THEN failed_logins ELSE 0 END,"
        " locked_until = CASE WHEN %(hash)s IS NULL AND NOT %(unlock)s THEN locked_until END"
        " WHERE username = %(username)s RETURNING " + _OPERATOR,
        {
            "hash": password_hash,
            "role": role,
            "active": active,
            "unlock": unlock,
            "username": username,
        },
    )
    row = await cur.fetchone()
    if row is None:
        raise OperatorNotFound(f"no operator {username!r}")
    await conn.execute("DELETE FROM operator_sessions WHERE username = %s", (username,))
    return Operator(**row)


async def list_all(conn: Conn) -> list[Operator]:
    cur = await conn.execute("SELECT " + _OPERATOR + " FROM operators ORDER BY username")
    return [Operator(**row) for row in await cur.fetchall()]


async def credentials(conn: Conn, username: str) -> tuple[Operator, str] | None:
    """The operator and their password hash, row-locked for the login's counters."""
    cur = await conn.execute(
        "SELECT " + _OPERATOR + ", password_hash FROM operators WHERE username = %s FOR UPDATE",
        (username,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    password_hash = row.pop("password_hash")
    return Operator(**row), password_hash


async def record_login(
    conn: Conn, username: str, *, ok: bool, now: datetime, lock_after: int, lock_until: datetime
) -> None:
    """Counts a login: a success clears the count; the ``lock_after``-th failure in a row
    refuses logins until ``lock_until``."""
    if ok:
        await conn.execute(
            "UPDATE operators SET failed_logins = 0, locked_until = NULL, last_login_at = %s"
            " WHERE username = %s",
            (now, username),
        )
        return
    await conn.execute(
        "UPDATE operators SET failed_logins = failed_logins + 1,"
        " locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s ELSE locked_until END"
        " WHERE username = %s",
        (lock_after, lock_until, username),
    )


async def open_session(
    conn: Conn,
    *,
    token_hash: bytes,
    username: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    # Expired sessions are swept here, at the rare moment a new one is made.
    await conn.execute("DELETE FROM operator_sessions WHERE expires_at < %s", (now,))
    await conn.execute(
        "INSERT INTO operator_sessions (token_hash, username, csrf_token, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (token_hash, username, csrf_token, now, expires_at),
    )


async def session(conn: Conn, token_hash: bytes, now: datetime) -> Session | None:
    """The live session of that token, if its operator is still active."""
    cur = await conn.execute(
        "SELECT s.username, o.role, s.csrf_token, s.expires_at FROM operator_sessions s"
        " JOIN operators o USING (username)"
        " WHERE s.token_hash = %s AND s.expires_at > %s AND o.active",
        (token_hash, now),
    )
    row = await cur.fetchone()
    return None if row is None else Session(**row)


async def close_session(conn: Conn, token_hash: bytes) -> None:
    await conn.execute("DELETE FROM operator_sessions WHERE token_hash = %s", (token_hash,))


async def record_action(
    conn: Conn,
    *,
    username: str,
    action: str,
    location_id: str | None,
    door_number: int | None,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO operator_actions (username, action, location_id, door_number, detail, at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (username, action, location_id, door_number, json.dumps(detail), now),
    )


async def recent_actions(conn: Conn, location_id: str, limit: int) -> list[OperatorAction]:
    cur = await conn.execute(
        "SELECT action_id, username, action, location_id, door_number, detail, at"
        " FROM operator_actions WHERE location_id = %s ORDER BY at DESC, action_id DESC"
        " LIMIT %s",
        (location_id, limit),
    )
    return [OperatorAction(**row) for row in await cur.fetchall()]
