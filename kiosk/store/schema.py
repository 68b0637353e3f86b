"""The store's schema, as versioned migrations applied at start.

Migrations are sqlite-utils `Migrations`: each runs in a transaction with the record of it
having been applied (table ``_sqlite_migrations``), so a crash mid-migration leaves the previous
version intact. A database that records a migration this code does not know (written by newer
firmware) is refused rather than used half-understood.

Statuses are CHECK-constrained to the values of ``shared/states.py`` and the enums of
`kiosk.store.records`, and invariant 1 is a constraint: a unique index allows one live allocation
per door, and another one active operation per door.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from kiosk.store.records import (
    ACTIVE_OPERATION_STATES,
    Actor,
    AllocationKind,
    CodeKind,
    OperationState,
    Purpose,
)
from shared.sizes import Size
from shared.states import LIVE_ALLOCATION_STATUSES, AllocationStatus, DoorStatus

MIGRATION_SET = "kiosk"

migrations = Migrations(MIGRATION_SET)


def _values(values: Iterable[StrEnum]) -> str:
    """An SQL list of the enum's values, for CHECK constraints (constants only, never input)."""
    return ", ".join(f"'{value}'" for value in sorted(str(v) for v in values))


_ACTIVE = _values(ACTIVE_OPERATION_STATES)
_LIVE = _values(LIVE_ALLOCATION_STATUSES)

_INITIAL = [
    f"""
    CREATE TABLE doors (
        number               INTEGER PRIMARY KEY CHECK (number > 0),
        size                 TEXT NOT NULL CHECK (size IN ({_values(Size)})),
        status               TEXT NOT NULL DEFAULT 'available'
                             CHECK (status IN ({_values(DoorStatus)})),
        maintenance_reason   TEXT,
        sensor_open          INTEGER CHECK (sensor_open IN (0, 1)),
        sensor_occupied      INTEGER CHECK (sensor_occupied IN (0, 1)),
        sensor_changed_at    TEXT,
        fault                TEXT,
        left_open_alerted_at TEXT,
        updated_at           TEXT NOT NULL
    )
    """,
    f"""
    CREATE TABLE codes (
        code_id    INTEGER PRIMARY KEY,
        kind       TEXT NOT NULL CHECK (kind IN ({_values(CodeKind)})),
        -- HMAC-SHA256 under the kiosk's secret; the code itself is never stored.
        code_hash  TEXT NOT NULL CHECK (length(code_hash) = 64),
        created_at TEXT NOT NULL,
        used_at    TEXT
    )
    """,
    # One live row per code: later parcels of the same customer join it.
    "CREATE UNIQUE INDEX codes_live ON codes (code_hash) WHERE used_at IS NULL",
    "CREATE INDEX codes_hash ON codes (code_hash, created_at)",
    f"""
    CREATE TABLE allocations (
        allocation_id          TEXT PRIMARY KEY,
        kind                   TEXT NOT NULL CHECK (kind IN ({_values(AllocationKind)})),
        barcode                TEXT NOT NULL CHECK (length(barcode) > 0),
        size                   TEXT NOT NULL CHECK (size IN ({_values(Size)})),
        door                   INTEGER REFERENCES doors (number),
        proposed_door          INTEGER,
        status                 TEXT NOT NULL CHECK (status IN ({_values(AllocationStatus)})),
        code_id                INTEGER REFERENCES codes (code_id),
        reservation_expires_at TEXT,
        pickup_expires_at      TEXT,
        deposited_at           TEXT,
        finished_at            TEXT,
        cancel_reason          TEXT,
        revision               INTEGER NOT NULL DEFAULT 0,
        created_at             TEXT NOT NULL,
        updated_at             TEXT NOT NULL
    )
    """,
    # Invariant 1: a door never holds two parcels. One column, so never two doors either.
    f"""
    CREATE UNIQUE INDEX allocations_one_live_per_door ON allocations (door)
        WHERE door IS NOT NULL AND status IN ({_LIVE})
    """,
    "CREATE INDEX allocations_barcode ON allocations (barcode)",
    "CREATE INDEX allocations_code ON allocations (code_id)",
    """
    CREATE TABLE returns (
        allocation_id TEXT PRIMARY KEY REFERENCES allocations (allocation_id),
        order_id      TEXT NOT NULL,
        reason        TEXT,
        created_at    TEXT NOT NULL
    )
    """,
    f"""
    CREATE TABLE door_operations (
        operation_id  TEXT PRIMARY KEY,
        door          INTEGER NOT NULL REFERENCES doors (number),
        purpose       TEXT NOT NULL CHECK (purpose IN ({_values(Purpose)})),
        actor         TEXT NOT NULL CHECK (actor IN ({_values(Actor)})),
        allocation_id TEXT REFERENCES allocations (allocation_id),
        code_id       INTEGER REFERENCES codes (code_id),
        state         TEXT NOT NULL CHECK (state IN ({_values(OperationState)})),
        attempts      INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL,
        opened_at     TEXT,
        finished_at   TEXT,
        outcome       TEXT
    )
    """,
    # A door serves one operation at a time, so every opening is attributed to exactly one.
    f"""
    CREATE UNIQUE INDEX door_operations_one_active_per_door ON door_operations (door)
        WHERE state IN ({_ACTIVE})
    """,
    "CREATE INDEX door_operations_code ON door_operations (code_id)",
    "CREATE INDEX door_operations_allocation ON door_operations (allocation_id)",
    """
    CREATE TABLE outbox (
        -- AUTOINCREMENT: a sequence number is never reused, even after pruning.
        sequence   INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id   TEXT NOT NULL UNIQUE,
        type       TEXT NOT NULL,
        payload    TEXT NOT NULL CHECK (json_valid(payload)),
        created_at TEXT NOT NULL,
        acked      INTEGER NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)),
        acked_at   TEXT
    )
    """,
    "CREATE INDEX outbox_pending ON outbox (sequence) WHERE acked = 0",
    """
    CREATE TABLE sync_state (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        last_revision INTEGER NOT NULL CHECK (last_revision >= 0),
        updated_at    TEXT
    )
    """,
    "INSERT INTO sync_state (id, last_revision) VALUES (1, 0)",
    """
    CREATE TABLE keypad_failures (
        failure_id INTEGER PRIMARY KEY,
        at         TEXT NOT NULL
    )
    """,
    "CREATE INDEX keypad_failures_at ON keypad_failures (at)",
    """
    CREATE TABLE keypad_lock (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        locked_until TEXT
    )
    """,
    "INSERT INTO keypad_lock (id, locked_until) VALUES (1, NULL)",
    f"""
    CREATE TABLE audit_log (
        audit_id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at           TEXT NOT NULL,
        actor        TEXT NOT NULL CHECK (actor IN ({_values(Actor)})),
        door         INTEGER,
        command      TEXT NOT NULL,
        result       TEXT NOT NULL,
        operation_id TEXT,
        detail       TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(detail)),
        finished_at  TEXT
    )
    """,
    "CREATE INDEX audit_log_operation ON audit_log (operation_id)",
    """
    CREATE TABLE kiosk_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
]


@migrations(name="0001_initial")
def _initial(db: Database) -> None:
    for statement in _INITIAL:
        db.execute(statement)


@migrations(name="0002_pending_audit_index")
def _pending_audit_index(db: Database) -> None:
    # Boot reconciliation looks for door commands still awaiting their result.
    db.execute("CREATE INDEX audit_log_pending ON audit_log (audit_id) WHERE result = 'pending'")


@migrations(name="0003_door_maintenance_revision")
def _door_maintenance_revision(db: Database) -> None:
    # The cloud revision of the last maintenance change applied to the door, so that a late
    # duplicate of an older "on" or "off" is ignored (invariant 5).
    db.execute(
        "ALTER TABLE doors ADD COLUMN maintenance_revision INTEGER NOT NULL DEFAULT 0"
        " CHECK (maintenance_revision >= 0)"
    )


@migrations(name="0004_applied_commands")
def _applied_commands(db: Database) -> None:
    # Cloud commands (remote opens) already decided, kept past their expiry, so that a replay
    # opens nothing even after a restart has emptied the in-memory replay guard (invariant 7).
    db.execute(
        """
        CREATE TABLE applied_commands (
            command_id   TEXT PRIMARY KEY,
            kind         TEXT NOT NULL,
            door         INTEGER,
            outcome      TEXT NOT NULL,
            operation_id TEXT,
            decided_at   TEXT NOT NULL,
            keep_until   TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX applied_commands_keep_until ON applied_commands (keep_until)")


@migrations(name="0005_outbox_payload_version")
def _outbox_payload_version(db: Database) -> None:
    # The payload schema version of each event (`shared.events`), kept with it so that events
    # written before a firmware upgrade are still sent with the version they were written in.
    db.execute(
        "ALTER TABLE outbox ADD COLUMN version INTEGER NOT NULL DEFAULT 1 CHECK (version > 0)"
    )


# Issue 9: the store incarnation.


@migrations(name="0006_store_incarnation")
def _store_incarnation(db: Database) -> None:
    # A random id made with the store (or at the upgrade that brings it, for a store from
    # before). A kiosk whose store is replaced restarts its event sequence at 1; it is the new
    # incarnation that tells the cloud these are new events, not conflicting ones (see
    # `kiosk.store.meta.store_incarnation`).
    db.execute(
        "INSERT OR IGNORE INTO kiosk_meta (key, value) VALUES ('store_incarnation', ?)",
        [str(uuid.uuid4())],
    )


# issue 10: door labels.


@migrations(name="0007_door_labels")
def _door_labels(db: Database) -> None:
    # The label the cloud gave the door ("A1", "B5"), what the screen calls it; NULL until the
    # cloud sent one (the screen shows the door number then).
    db.execute("ALTER TABLE doors ADD COLUMN label TEXT")


# --- Issue 11: when a door's pulse started --------------------------------------------------


@migrations(name="0008_operation_pulse_started")
def _operation_pulse_started(db: Database) -> None:
    # When the operation's pulse got the bus (committed just before the pulse bytes go out), so
    # that boot reconciliation can tell "committed, never pulsed" (a kill -9 between the commit
    # and the pulse, a frame queued behind timed-out polls) from "maybe pulsed": only the first
    # gives a pickup code back (`kiosk.flows.completion.abandon`).
    db.execute("ALTER TABLE door_operations ADD COLUMN pulse_started_at TEXT")


@migrations(name="0008_staff_pin_guard")
def _staff_pin_guard(db: Database) -> None:
    # The staff PIN's brute-force guard, kept in SQLite like the keypad's so that a reboot does
    # not reset it (`kiosk.store.staff_pin_guard`).
    db.execute("CREATE TABLE staff_pin_failures (failure_id INTEGER PRIMARY KEY, at TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE staff_pin_lock (id INTEGER PRIMARY KEY CHECK (id = 1), locked_until TEXT)"
    )
    db.execute("INSERT INTO staff_pin_lock (id, locked_until) VALUES (1, NULL)")


# Issue 14: cloud changes deferred until their blocker ends.


@migrations(name="0009_deferred_changes")
def _deferred_changes(db: Database) -> None:
    # A cloud change the kiosk cannot apply now (its door is in use) is kept, whole, with why,
    # and applied when the door's operation settles (`kiosk.sync.deferred`); its revision is
    # consumed meanwhile. ``subject`` is what it changes (``allocation:<id>``, ``door:<n>``):
    # a later change of the same subject waits behind it, so each subject's changes apply in
    # revision order.
    db.execute(
        """
        CREATE TABLE deferred_changes (
            revision    INTEGER NOT NULL CHECK (revision >= 0),
            subject     TEXT NOT NULL,
            change      TEXT NOT NULL,
            reason      TEXT NOT NULL,
            deferred_at TEXT NOT NULL,
            retried_at  TEXT,
            PRIMARY KEY (subject, revision)
        )
        """
    )
    db.execute("CREATE INDEX deferred_changes_revision ON deferred_changes (revision, subject)")


# Issue 9: code-secret rotation.


@migrations(name="0010_code_secret_generations")
def _code_secret_generations(db: Database) -> None:
    # Each generation of the kiosk's code secret after the provisioned one (generation 1, which
    # stays in configuration): made by the kiosk from the cloud's half of an X25519 exchange
    # (`kiosk.store.code_secrets`). ``secret`` is wiped when the generation is retired, once no
    # live code is hashed under it. Each code row records the generation its hash is under.
    db.execute(
        """
        CREATE TABLE code_secret_generations (
            generation  INTEGER PRIMARY KEY CHECK (generation >= 1),
            secret      BLOB CHECK (secret IS NULL OR length(secret) >= 16),
            fingerprint TEXT,
            created_at  TEXT NOT NULL,
            retired_at  TEXT
        )
        """
    )
    db.execute("ALTER TABLE codes ADD COLUMN generation INTEGER NOT NULL DEFAULT 1")
    db.execute("CREATE INDEX codes_generation ON codes (generation) WHERE used_at IS NULL")


# issue 10: doors within reach.


@migrations(name="0012_door_accessible")
def _door_accessible(db: Database) -> None:
    # The operator's "within reach" flag of the door, from the cloud (``door_access``): 0 until
    # the cloud says otherwise. A drop-off moved out of such a door goes to another one.
    db.execute("ALTER TABLE doors ADD COLUMN accessible INTEGER NOT NULL DEFAULT 0")


# Issue 11: the people who sign in at the kiosk, provisioned by the cloud.


@migrations(name="0013_staff_and_couriers")
def _staff_and_couriers(db: Database) -> None:
    # Staff members and couriers as the cloud sends them (change kinds ``staff``, ``courier``):
    # a PIN or courier code only as its scrypt hash under the location's salt
    # (`shared.people`), so a copy of this file gives nobody a PIN. A revoked person's row is
    # kept (``revoked_at``) so that the audit log's names stay explained; ``revision`` is the
    # change log revision last applied to the person (older changes are stale).
    db.execute(
        """
        CREATE TABLE staff_members (
            staff_id   TEXT PRIMARY KEY,
            name       TEXT NOT NULL,
            pin_hash   TEXT NOT NULL,
            salt       TEXT NOT NULL,
            revoked_at TEXT,
            revision   INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX staff_members_pin ON staff_members (pin_hash)")
    db.execute(
        """
        CREATE TABLE couriers (
            courier_id  TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            carrier_id  TEXT NOT NULL,
            code_hash   TEXT NOT NULL,
            salt        TEXT NOT NULL,
            permissions TEXT NOT NULL,
            revoked_at  TEXT,
            revision    INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX couriers_code ON couriers (code_hash)")


@migrations(name="0014_courier_sessions")
def _courier_sessions(db: Database) -> None:
    # A courier's visit at the touchscreen, from sign-in to sign-out, with every parcel they put
    # in or took away in it (`kiosk.store.courier_sessions`). And each allocation's carrier, as
    # the cloud sends it, so a courier collects only their own carrier's parcels.
    db.execute(
        """
        CREATE TABLE courier_sessions (
            session_id  INTEGER PRIMARY KEY,
            courier_id  TEXT NOT NULL,
            started_at  TEXT NOT NULL,
            ended_at    TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE courier_session_parcels (
            session_id    INTEGER NOT NULL REFERENCES courier_sessions,
            allocation_id TEXT NOT NULL,
            action        TEXT NOT NULL,
            at            TEXT NOT NULL,
            PRIMARY KEY (session_id, allocation_id, action)
        )
        """
    )
    db.execute("ALTER TABLE allocations ADD COLUMN carrier_id TEXT")


@migrations(name="0015_snapshot_parts")
def _snapshot_parts(db: Database) -> None:
    # issue 14: the parts of a large snapshot received so far (`kiosk.store.snapshot_parts`),
    # kept until the last one is in, so that a restart mid-snapshot keeps them. ``body`` is the
    # part's JSON, checked on arrival.
    db.execute(
        """
        CREATE TABLE snapshot_parts (
            snapshot_id TEXT NOT NULL,
            revision    INTEGER NOT NULL CHECK (revision >= 0),
            part        INTEGER NOT NULL CHECK (part >= 1),
            parts       INTEGER NOT NULL CHECK (parts >= part),
            body        TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, part)
        )
        """
    )


@migrations(name="0016_courier_code_guard")
def _courier_code_guard(db: Database) -> None:
    # Issue 11: the courier code's brute-force guard, the staff PIN's mechanism with its own
    # tables (`kiosk.store.sign_in_guard`), so that guessing one never locks the other.
    db.execute(
        "CREATE TABLE courier_code_failures (failure_id INTEGER PRIMARY KEY, at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE courier_code_lock (id INTEGER PRIMARY KEY CHECK (id = 1), locked_until TEXT)"
    )
    db.execute("INSERT INTO courier_code_lock (id, locked_until) VALUES (1, NULL)")


KNOWN_MIGRATIONS: tuple[str, ...] = (
    "0001_initial",
    "0002_pending_audit_index",
    "0003_door_maintenance_revision",
    "0004_applied_commands",
    "0005_outbox_payload_version",
    "0006_store_incarnation",
    "0007_door_labels",
    "0008_operation_pulse_started",
    "0008_staff_pin_guard",
    "0009_deferred_changes",
    "0010_code_secret_generations",
    "0012_door_accessible",
    "0013_staff_and_couriers",
    "0014_courier_sessions",
    "0015_snapshot_parts",
    "0016_courier_code_guard",
)


class SchemaTooNew(RuntimeError):
    """The database was migrated by newer firmware; this code does not understand it."""


def migrate(db: Database) -> list[str]:
    """Applies pending migrations.

    Returns:
        The names of the migrations applied now (empty when the schema was current).

    Raises:
        SchemaTooNew: the database records migrations this code does not know.
    """
    applied = {m.name for m in migrations.applied(db)}
    unknown = sorted(applied - set(KNOWN_MIGRATIONS))
    if unknown:
        raise SchemaTooNew(
            f"the database has migrations this firmware does not know: {', '.join(unknown)}"
        )
    # In name order, whatever order the functions are defined in (several branches each add
    # one after 0005), and with no harm from a missing number: a set of the same name holding
    # the pending ones, sorted, records them where `migrations` looks.
    ordered = Migrations(MIGRATION_SET)
    for pending_one in sorted(migrations.pending(db), key=lambda m: m.name):
        ordered(name=pending_one.name, transactional=pending_one.transactional)(pending_one.fn)
    pending = [m.name for m in ordered.pending(db)]
    ordered.apply(db)
    return pending
