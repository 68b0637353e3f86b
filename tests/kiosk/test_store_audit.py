"""The audit log: door commands recorded before the pulse, results filled in once."""

from __future__ import annotations

import pytest

from kiosk.store import NotInTransaction, Store, audit
from kiosk.store.records import Actor
from shared.clock import ManualClock


def test_a_pending_entry_awaits_its_result(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        audit_id = audit.record_entry(
            db,
            clock.now(),
            Actor.DRIVER,
            "unlock",
            audit.PENDING,
            door=3,
            operation_id="op-1",
            detail={"attempt": 1},
        )
    (entry,) = audit.pending_entries(store.db)
    assert entry.audit_id == audit_id
    assert (entry.actor, entry.door, entry.command, entry.operation_id) == (
        Actor.DRIVER,
        3,
        "unlock",
        "op-1",
    )
    assert entry.at == clock.now()
    assert entry.finished_at is None
    assert entry.detail == {"attempt": 1}
    assert audit.pending_entries(store.db, "op-1") == [entry]
    assert audit.pending_entries(store.db, "op-2") == []


def test_an_entry_with_a_result_is_finished_at_once(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        audit.record_entry(db, clock.now(), Actor.CUSTOMER, "code_entry", "rejected")
    (entry,) = audit.entries(store.db)
    assert (entry.result, entry.finished_at, entry.detail) == ("rejected", clock.now(), {})
    assert audit.pending_entries(store.db) == []


def test_finish_entry_records_the_result_and_merges_detail(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        audit_id = audit.record_entry(
            db, clock.now(), Actor.STAFF, "unlock", audit.PENDING, detail={"attempt": 1, "a": 0}
        )
    done_at = clock.advance(2)
    with store.transaction() as db:
        audit.finish_entry(db, audit_id, "opened", done_at, {"a": 1, "b": 2})
    (entry,) = audit.entries(store.db)
    assert (entry.result, entry.finished_at) == ("opened", done_at)
    assert entry.detail == {"attempt": 1, "a": 1, "b": 2}
    assert audit.pending_entries(store.db) == []


def test_a_late_result_does_not_overwrite_the_first(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        audit_id = audit.record_entry(db, clock.now(), Actor.STAFF, "unlock", audit.PENDING)
        audit.finish_entry(db, audit_id, "interrupted", clock.now(), {"by": "boot"})
    clock.advance(5)
    with store.transaction() as db:
        audit.finish_entry(db, audit_id, "opened", clock.now(), {"by": "flow"})
    (entry,) = audit.entries(store.db)
    assert (entry.result, entry.detail) == ("interrupted", {"by": "boot"})
    assert entry.finished_at == entry.at


def test_finish_entry_of_an_unknown_id_changes_nothing(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        audit.finish_entry(db, 999, "opened", clock.now())
    assert audit.entries(store.db) == []


def test_audit_writes_need_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        audit.record_entry(store.db, clock.now(), Actor.KIOSK, "unlock", audit.PENDING)
    with pytest.raises(NotInTransaction):
        audit.finish_entry(store.db, 1, "opened", clock.now())
    assert audit.entries(store.db) == []


def test_entries_oldest_first_newest_limit_and_by_command(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        for i, command in enumerate(["unlock", "code_entry", "unlock", "maintenance_on"]):
            audit.record_entry(db, clock.now(), Actor.KIOSK, command, "done", door=i + 1)
    assert [e.door for e in audit.entries(store.db)] == [1, 2, 3, 4]
    assert [e.door for e in audit.entries(store.db, limit=2)] == [3, 4]
    assert [e.door for e in audit.entries(store.db, command="unlock")] == [1, 3]
    assert [e.door for e in audit.entries(store.db, command="unlock", limit=1)] == [3]
    ids = [e.audit_id for e in audit.entries(store.db)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
