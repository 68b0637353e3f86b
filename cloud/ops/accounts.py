"""Operator accounts: argon2id password hashes, lockout after wrong passwords, sessions.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, so
neither a database dump nor a log line holds a usable session. Each session has its own CSRF
token, which every form of the console carries back (`cloud.ops.guard`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cloud.store import operators as store
from cloud.store.database import Pool
from cloud.store.operators import Operator

log = logging.getLogger(__name__)


class Role(StrEnum):
    """What an operator may do: a viewer looks, support acts on doors and parcels, an admin also
    manages operators."""

    VIEWER = "viewer"
    SUPPORT = "support"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 0, Role.SUPPORT: 1, Role.ADMIN: 2}

SESSION_LIFETIME = timedelta(hours=8)  # a working shift; then log in again
LOCK_AFTER = 5  # wrong passwords in a row
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[a-z0-9._-]{2,64}$")

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when the username is unknown, so that a wrong username costs as long as a
# wrong password and does not tell which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class BadOperator(store.OperatorError):
    """A username or password that does not meet the rules."""


class LoginRefused(Exception):
    """Wrong username or password, a locked or a disabled account (``reason`` says which, for
    the log; the person is told only that the login failed, or that it is locked)."""

    def __init__(self, reason: str, *, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # for the cookie; never stored
    csrf_token: str
    expires_at: datetime


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check_new(username: str | None, password: str | None) -> None:
    if username is not None and not USERNAME.match(username):
        raise BadOperator("a username is 2-64 of a-z, 0-9, '.', '_' and '-'")
    if password is not None and len(password) < MIN_PASSWORD:
        raise BadOperator(f"a password has at least {MIN_PASSWORD} characters")


async def create_operator(
    pool: Pool, *, username: str, password: str, role: Role, now: datetime
) -> Operator:
    _check_new(username, password)
    async with pool.connection() as conn:
        return await store.create(
            conn, username=username, password_hash=_hasher.hash(password), role=role, now=now
        )


async def update_operator(
    pool: Pool,
    username: str,
    *,
    password: str | None = None,
    role: Role | None = None,
    active: bool | None = None,
    unlock: bool = False,
) -> Operator:
    """Changes an operator; their open sessions end (they log in again under the new terms).
    A new password or ``unlock`` lifts a lockout after wrong passwords."""
    _check_new(None, password)
    async with pool.connection() as conn, conn.transaction():
        return await store.update(
            conn,
            username,
            password_hash=None if password is None else _hasher.hash(password),
            role=role,
            active=active,
            unlock=unlock,
        )


async def log_in(
    pool: Pool, username: str, password: str, now: datetime
) -> tuple[Operator, NewSession]:
    """Checks the password and opens a session.

    Raises:
        LoginRefused: unknown username, wrong password, locked or disabled account.
    """
    refused: LoginRefused | None = None
    async with pool.connection() as conn, conn.transaction():
        found = await store.credentials(conn, username)
        if found is None:
            _verify(_DUMMY_HASH, password)
            raise LoginRefused(f"unknown operator {username!r}")
        operator, password_hash = found
        if operator.locked_until is not None and operator.locked_until > now:
            raise LoginRefused(f"{username} is locked", locked_until=operator.locked_until)
        ok = _verify(password_hash, password) and operator.active
        await store.record_login(
            conn, username, ok=ok, now=now, lock_after=LOCK_AFTER, lock_until=now + LOCK_FOR
        )
        if ok:
            session = NewSession(
                token=secrets.token_urlsafe(32),
                csrf_token=secrets.token_urlsafe(32),
                expires_at=now + SESSION_LIFETIME,
            )
            await store.open_session(
                conn,
                token_hash=token_hash(session.token),
                username=username,
                csrf_token=session.csrf_token,
                now=now,
                expires_at=session.expires_at,
            )
        elif not operator.active:
            refused = LoginRefused("account disabled")
        elif operator.failed_logins + 1 >= LOCK_AFTER:
            log.warning("operator %s locked after %d wrong passwords", username, LOCK_AFTER)
            refused = LoginRefused("wrong password", locked_until=now + LOCK_FOR)
        else:
            refused = LoginRefused("wrong password")
    # Raised once the failure's count has committed (inside, the rollback would undo it).
    if refused is not None:
        raise refused
    return operator, session


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def session_of(pool: Pool, token: str, now: datetime) -> store.Session | None:
    async with pool.connection() as conn:
        return await store.session(conn, token_hash(token), now)


async def log_out(pool: Pool, token: str) -> None:
    async with pool.connection() as conn:
        await store.close_session(conn, token_hash(token))
