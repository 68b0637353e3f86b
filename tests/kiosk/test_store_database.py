"""Opening the kiosk database: migrations, identity binding, file settings, transactions."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from kiosk.store import CodeHasher, KioskIdentity, NotInTransaction, Store, StoreError, outbox
from kiosk.store.database import require_transaction
from kiosk.store.records import EventType
from kiosk.store.schema import (
    KNOWN_MIGRATIONS,
    MIGRATION_SET,
    SchemaTooNew,
    migrate,
    migrations,
)
from shared.clock import ManualClock
from tests.event_samples import sample
from tests.kiosk.store_helpers import IDENTITY, SECRET

EXPECTED_TABLES = {
    "doors",
    "codes",
    "allocations",
    "returns",
    "door_operations",
    "outbox",
    "sync_state",
    "keypad_failures",
    "keypad_lock",
    "audit_log",
    "kiosk_meta",
    "_sqlite_migrations",
}


def _applied(db: Database) -> list[str]:
    return [
        row["name"]
        for row in db.query(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY id",
            [MIGRATION_SET],
        )
    ]


def _open(path: Path, secret: str = SECRET, identity: KioskIdentity = IDENTITY) -> Store:
    return Store.open(path, CodeHasher(secret), identity)


# --- migrations ---


def test_fresh_database_gets_the_whole_schema(bare_store: Store) -> None:
    assert set(bare_store.db.table_names()) >= EXPECTED_TABLES
    assert _applied(bare_store.db) == list(KNOWN_MIGRATIONS)
    indexes = {
        row["name"]
        for row in bare_store.db.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {
        "allocations_one_live_per_door",
        "door_operations_one_active_per_door",
        "codes_live",
        "audit_log_pending",
    } <= indexes


def test_fresh_database_starts_at_revision_zero_with_the_keypad_unlocked(
    bare_store: Store,
) -> None:
    assert bare_store.db.execute("SELECT last_revision FROM sync_state").fetchall() == [(0,)]
    assert bare_store.db.execute("SELECT locked_until FROM keypad_lock").fetchall() == [(None,)]


def test_migrate_on_a_current_database_applies_nothing(bare_store: Store) -> None:
    assert migrate(bare_store.db) == []
    assert _applied(bare_store.db) == list(KNOWN_MIGRATIONS)


def test_reopening_a_file_database_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    locked = sample(EventType.KEYPAD_LOCKED, failures=1)
    with _open(path) as store:
        with store.transaction() as db:
            outbox.append_event(db, locked, datetime.now(UTC))
        first = _applied(store.db)
        meta = list(store.db.query("SELECT * FROM kiosk_meta ORDER BY key"))
    with _open(path) as store:
        assert _applied(store.db) == first == list(KNOWN_MIGRATIONS)
        assert list(store.db.query("SELECT * FROM kiosk_meta ORDER BY key")) == meta
        assert [e.payload for e in outbox.events(store.db)] == [locked.payload()]


def test_a_database_at_an_older_version_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX audit_log_pending")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0002_pending_audit_index'")
    conn.commit()
    conn.close()
    with _open(path) as store:
        assert sorted(_applied(store.db)) == list(KNOWN_MIGRATIONS)
        assert store.db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'audit_log_pending'"
        ).fetchone() == (1,)


def test_doors_of_an_older_database_gain_a_maintenance_revision(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    old = Database(path)
    migrations.apply(old, stop_before="0003_door_maintenance_revision")
    old.execute(
        "INSERT INTO doors (number, size, status, updated_at) VALUES (1, 'small', 'reserved', 'x')"
    )
    old.close()
    with _open(path) as store:
        assert _applied(store.db) == list(KNOWN_MIGRATIONS)
        assert store.db.execute(
            "SELECT number, status, maintenance_revision FROM doors"
        ).fetchall() == [(1, "reserved", 0)]


def test_a_database_with_an_unknown_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        [MIGRATION_SET, "0099_from_the_future", "2027-01-01"],
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="0099_from_the_future"):
        _open(path)


def test_migrate_raises_schema_too_new_for_an_unknown_migration(bare_store: Store) -> None:
    bare_store.db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        [MIGRATION_SET, "0003_newer", "2027-01-01"],
    )
    with pytest.raises(SchemaTooNew, match="0003_newer"):
        migrate(bare_store.db)


# --- identity and code secret ---


def test_the_database_remembers_its_kiosk_and_secret_fingerprint(bare_store: Store) -> None:
    meta = {row["key"]: row["value"] for row in bare_store.db.query("SELECT * FROM kiosk_meta")}
    assert uuid.UUID(meta.pop("store_incarnation"))  # a store of its own (issue 9)
    assert meta == {
        "location_id": IDENTITY.location_id,
        "kiosk_id": IDENTITY.kiosk_id,
        "code_secret_fingerprint": CodeHasher(SECRET).fingerprint(),
    }
    assert SECRET not in str(meta)


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        (KioskIdentity("loc-hamburg-02", IDENTITY.kiosk_id), "location_id"),
        (KioskIdentity(IDENTITY.location_id, "kiosk-8"), "kiosk_id"),
    ],
)
def test_opening_with_another_location_or_kiosk_is_refused(
    tmp_path: Path, identity: KioskIdentity, field: str
) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path):
        pass
    with pytest.raises(StoreError, match=field):
        _open(path, identity=identity)
    # The refusal changed nothing: the rightful kiosk still opens it.
    with _open(path) as store:
        assert store.identity == IDENTITY


def test_opening_with_another_code_secret_is_refused_without_revealing_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path):
        pass
    other = "another-secret-abcdefghijklmnop"
    with pytest.raises(StoreError, match="code secret") as info:
        _open(path, secret=other)
    assert other not in str(info.value)
    assert SECRET not in str(info.value)


def test_a_path_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        _open(tmp_path / "missing-dir" / "kiosk.db")


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    with pytest.raises(StoreError, match="kiosk database"):
        _open(path)


def test_kiosk_identity_refuses_empty_ids() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        KioskIdentity(" ", "kiosk-1")
    with pytest.raises(ValueError, match="must not be empty"):
        KioskIdentity("loc-1", "")


# --- file settings ---


def test_a_file_database_uses_wal_and_full_synchronous_writes(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert store.db.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    # WAL is a property of the file: a plain connection sees it too.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_another_connection_reads_committed_data_while_the_store_is_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path) as store:
        with store.transaction() as db:
            outbox.append_event(db, sample(EventType.DOOR_CLOSED, door=3), datetime.now(UTC))
        reader = sqlite3.connect(path)
        assert reader.execute("SELECT type FROM outbox").fetchall() == [("door_closed",)]
        reader.close()


def test_close_is_idempotent(tmp_path: Path) -> None:
    store = _open(tmp_path / "kiosk.db")
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.db.execute("SELECT 1")


# --- transactions ---


def _event_count(store: Store) -> int:
    return int(store.db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_transaction_commits_on_success(bare_store: Store, clock: ManualClock) -> None:
    with bare_store.transaction() as db:
        outbox.append_event(db, sample(EventType.DOOR_OPENED, door=1), clock.now())
        outbox.append_event(db, sample(EventType.DOOR_CLOSED, door=1), clock.now())
    assert not bare_store.db.conn.in_transaction
    assert _event_count(bare_store) == 2


def test_transaction_rolls_back_everything_on_an_exception(
    bare_store: Store, clock: ManualClock
) -> None:
    def open_then_fail() -> None:
        with bare_store.transaction() as db:
            outbox.append_event(db, sample(EventType.DOOR_OPENED, door=1), clock.now())
            db.execute("UPDATE sync_state SET last_revision = 9")
            raise RuntimeError("pulse failed")

    with pytest.raises(RuntimeError, match="pulse failed"):
        open_then_fail()
    assert not bare_store.db.conn.in_transaction
    assert _event_count(bare_store) == 0
    assert bare_store.db.execute("SELECT last_revision FROM sync_state").fetchone() == (0,)


def test_a_failing_statement_rolls_back_the_earlier_ones(
    bare_store: Store, clock: ManualClock
) -> None:
    def append_then_violate() -> None:
        with bare_store.transaction() as db:
            outbox.append_event(db, sample(EventType.DOOR_OPENED, door=1), clock.now())
            db.execute("INSERT INTO sync_state (id, last_revision) VALUES (1, 5)")

    with pytest.raises(sqlite3.IntegrityError):
        append_then_violate()
    assert _event_count(bare_store) == 0


def test_nested_transaction_is_a_savepoint(bare_store: Store, clock: ManualClock) -> None:
    def inner_fails() -> None:
        with bare_store.transaction() as inner:
            outbox.append_event(inner, sample(EventType.DOOR_CLOSED, door=1), clock.now())
            raise ValueError("inner")

    with bare_store.transaction() as db:
        outbox.append_event(db, sample(EventType.DOOR_OPENED, door=1), clock.now())
        with pytest.raises(ValueError, match="inner"):
            inner_fails()
        # The inner failure undid only the inner write; the outer transaction goes on.
        assert db.conn.in_transaction
        with bare_store.transaction() as inner:
            outbox.append_event(inner, sample(EventType.DOOR_TAMPERED, door=2), clock.now())
    assert [e.type for e in outbox.events(bare_store.db)] == [
        EventType.DOOR_OPENED,
        EventType.DOOR_TAMPERED,
    ]


def test_an_outer_rollback_undoes_a_committed_savepoint(
    bare_store: Store, clock: ManualClock
) -> None:
    def outer_fails() -> None:
        with bare_store.transaction():
            with bare_store.transaction() as inner:
                outbox.append_event(inner, sample(EventType.DOOR_OPENED, door=1), clock.now())
            raise RuntimeError("outer fails")

    with pytest.raises(RuntimeError, match="outer fails"):
        outer_fails()
    assert _event_count(bare_store) == 0


def test_a_write_outside_a_transaction_raises_not_in_transaction(
    bare_store: Store, clock: ManualClock
) -> None:
    with pytest.raises(NotInTransaction):
        outbox.append_event(bare_store.db, sample(EventType.DOOR_OPENED, door=1), clock.now())
    with pytest.raises(NotInTransaction):
        require_transaction(bare_store.db)
    assert _event_count(bare_store) == 0


def test_transaction_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    with _open(path) as store, store.transaction():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()


def test_committed_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    clock = ManualClock()
    with _open(path) as store, store.transaction() as db:
        outbox.append_event(db, sample(EventType.PARCEL_DEPOSITED), clock.now())
    with _open(path) as store:
        (event,) = outbox.events(store.db)
        assert event.type is EventType.PARCEL_DEPOSITED
        assert event.created_at == clock.now()


def test_a_failed_commit_leaves_no_transaction_open(store: Store) -> None:
    """After a COMMIT that fails, the next transaction is a real one, not a savepoint of it."""
    store.db.execute("PRAGMA defer_foreign_keys = ON")  # the violation surfaces at COMMIT
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute(
            "INSERT INTO door_operations (operation_id, door, purpose, actor, state, created_at)"
            " VALUES ('x', 999, 'open', 'staff', 'completed', '2026-01-01')"
        )
    assert not store.db.conn.in_transaction


def test_pending_migrations_apply_in_name_order_whatever_their_definition_order(
    bare_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiosk.store import schema

    ran: list[str] = []
    later = Migrations(MIGRATION_SET)
    for name in ("0099_later", "0098_earlier"):  # defined out of order, 0097 missing
        later(name=name)(lambda db, name=name: ran.append(name))
    for existing in schema.migrations.pending(bare_store.db):
        later(name=existing.name)(existing.fn)
    monkeypatch.setattr(schema, "migrations", later)
    monkeypatch.setattr(
        schema, "KNOWN_MIGRATIONS", (*KNOWN_MIGRATIONS, "0098_earlier", "0099_later")
    )

    applied = migrate(bare_store.db)

    assert applied == ["0098_earlier", "0099_later"]
    assert ran == ["0098_earlier", "0099_later"]
    assert _applied(bare_store.db)[-2:] == ["0098_earlier", "0099_later"]


def test_migrations_are_registered_and_known_in_name_order() -> None:
    """sqlite-utils applies migrations in the order they are registered; issues add theirs
    after 0005 in separate blocks (0006 to 0009), so a merge must keep them in name order, and
    a missing number in between changes nothing."""
    registered = [m.name for m in migrations._migrations]
    assert registered == sorted(registered)
    assert list(KNOWN_MIGRATIONS) == sorted(KNOWN_MIGRATIONS) == registered
