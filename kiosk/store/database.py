"""The kiosk's SQLite database: opening it safely, and the transaction every change goes through.

One module owns the connection. Settings chosen for a box whose power may be cut at any moment:

- WAL journal, so readers (the CLI of a field tech) never block the daemon, and a crash never
  leaves a half-written page;
- ``synchronous=FULL``, so a committed transaction is on disk before the door is pulsed
  (invariant 3): WAL's default NORMAL can lose the last commits on power loss;
- foreign keys on, and a busy timeout so a second process waits instead of failing.

Writes take the database's write lock at ``BEGIN IMMEDIATE``: a transaction that reads before it
writes (every flow does) cannot then fail half-way for want of the lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sqlite_utils import Database

from kiosk.store.code_hash import CodeHasher
from kiosk.store.schema import SchemaTooNew, migrate

BUSY_TIMEOUT_MS = 5000


class StoreError(RuntimeError):
    """The database cannot be used: wrong kiosk, changed code secret, schema too new, bad path."""


class NotInTransaction(RuntimeError):
    """A write was attempted outside `Store.transaction` (a bug: it would not be atomic)."""


@dataclass(frozen=True, slots=True)
class KioskIdentity:
    """Which kiosk a database belongs to; bound at first start and checked at every start.

    Raises:
        ValueError: on construction, for an empty id.
    """

    location_id: str
    kiosk_id: str

    def __post_init__(self) -> None:
        if not self.location_id.strip() or not self.kiosk_id.strip():
            raise ValueError("location_id and kiosk_id must not be empty")


class Store:
    """The open database, its code hasher and the kiosk it belongs to.

    Build it with `Store.open` (a file) or `Store.in_memory` (tests). Reads may use `db`
    directly; every write goes through `transaction`.
    """

    def __init__(self, db: Database, hasher: CodeHasher, identity: KioskIdentity) -> None:
        self.db = db
        self.hasher = hasher
        self.identity = identity

    @classmethod
    def open(cls, path: str | Path, hasher: CodeHasher, identity: KioskIdentity) -> Self:
        """Opens (creating if needed) the database at ``path`` and applies pending migrations.

        Raises:
            StoreError: the file cannot be opened, belongs to another kiosk or location, was
                written with another code secret, or by newer firmware.
        """
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the kiosk database {path}: {error}") from None
        return cls._prepare(conn, hasher, identity, str(path))

    @classmethod
    def in_memory(cls, hasher: CodeHasher, identity: KioskIdentity) -> Self:
        """A private in-memory database, migrated: for fast tests."""
        return cls._prepare(sqlite3.connect(":memory:"), hasher, identity, ":memory:")

    @classmethod
    def _prepare(
        cls, conn: sqlite3.Connection, hasher: CodeHasher, identity: KioskIdentity, where: str
    ) -> Self:
        # No implicit BEGIN from the sqlite3 module: transactions are explicit, so a write
        # outside one is caught (NotInTransaction) rather than left uncommitted.
        conn.isolation_level = None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db = Database(conn, execute_plugins=False)
            migrate(db)
            store = cls(db, hasher, identity)
            store._bind_identity()
        except SchemaTooNew as error:
            conn.close()
            raise StoreError(str(error)) from None
        except sqlite3.Error as error:
            conn.close()
            raise StoreError(f"cannot use the kiosk database {where}: {error}") from None
        except StoreError:
            conn.close()
            raise
        return store

    def _bind_identity(self) -> None:
        expected = {
            "location_id": self.identity.location_id,
            "kiosk_id": self.identity.kiosk_id,
            "code_secret_fingerprint": self.hasher.fingerprint(),
        }
        with self.transaction() as db:
            stored = {row["key"]: row["value"] for row in db.query("SELECT * FROM kiosk_meta")}
            for key, value in expected.items():
                if key not in stored:
                    db.execute("INSERT INTO kiosk_meta (key, value) VALUES (?, ?)", [key, value])
                elif stored[key] != value:
                    what = "code secret" if key == "code_secret_fingerprint" else key
                    shown = "" if what == "code secret" else f": {stored[key]!r}, not {value!r}"
                    raise StoreError(
                        f"this database was created with a different {what}{shown}; "
                        "codes and events in it belong to that configuration"
                    )

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One atomic unit of work: commits on success, rolls back on any exception.

        With ``synchronous=FULL`` the commit is durable when the block exits. Nested use
        becomes a savepoint of the outer transaction.

        Raises:
            sqlite3.Error: the database failed (the transaction is rolled back).
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full, I/O error) can leave the transaction open; the next
            # `transaction()` would then silently become a savepoint of it.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Closes the connection. Idempotent."""
        self.db.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def require_transaction(db: Database) -> None:
    """Raises `NotInTransaction` unless a transaction is open on ``db``."""
    if not db.conn.in_transaction:
        raise NotInTransaction("store writes must run inside Store.transaction()")
