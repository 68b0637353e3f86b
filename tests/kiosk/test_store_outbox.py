"""The transactional outbox: sequences without gaps, never reused, acknowledgements, pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from kiosk.store import NotInTransaction, Store, outbox
from kiosk.store.records import EventType, to_db_time
from shared.clock import ManualClock
from shared.events import DoorLeftOpen, ParcelPickedUp
from tests.event_samples import sample


def _append(store: Store, clock: ManualClock, n: int = 1) -> list[outbox.OutboxEvent]:
    with store.transaction() as db:
        return [
            outbox.append_event(db, sample(EventType.DOOR_CLOSED, door=i + 1), clock.now())
            for i in range(n)
        ]


def _fail_after_append(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        outbox.append_event(db, sample(EventType.DOOR_OPENED, door=9), clock.now())
        raise RuntimeError("crash before commit")


def test_an_event_is_stored_as_given(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        made = outbox.append_event(db, ParcelPickedUp(allocation_id="a1", door=3), clock.now())
    (stored,) = outbox.events(store.db)
    assert stored == made
    assert stored.type is EventType.PARCEL_PICKED_UP
    assert stored.payload == {"allocation_id": "a1", "door": 3}
    assert stored.version == made.version == ParcelPickedUp.VERSION
    assert stored.created_at == clock.now()
    assert stored.acked is False
    assert len(stored.event_id) == 36


def test_appending_needs_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        outbox.append_event(store.db, sample(EventType.DOOR_CLOSED), clock.now())
    assert outbox.events(store.db) == []
    assert outbox.last_sequence(store.db) == 0


def test_sequences_increase_by_one_and_event_ids_are_unique(
    store: Store, clock: ManualClock
) -> None:
    made = _append(store, clock, 3) + _append(store, clock, 2)
    assert [e.sequence for e in made] == [1, 2, 3, 4, 5]
    assert len({e.event_id for e in made}) == 5
    assert outbox.last_sequence(store.db) == 5


def test_a_rolled_back_event_leaves_no_gap(store: Store, clock: ManualClock) -> None:
    _append(store, clock, 2)
    with pytest.raises(RuntimeError, match="crash"):
        _fail_after_append(store, clock)
    with store.transaction(), pytest.raises(RuntimeError, match="crash"):
        _fail_after_append(store, clock)  # a savepoint rolled back inside a transaction
    assert [e.sequence for e in _append(store, clock)] == [3]
    assert [e.sequence for e in outbox.events(store.db)] == [1, 2, 3]


def test_sequences_are_never_reused_after_pruning(store: Store, clock: ManualClock) -> None:
    _append(store, clock, 3)
    outbox.ack_through(store, 3, clock.now())
    clock.advance(3600)
    assert outbox.prune_acked(store, clock.now()) == 3
    assert outbox.events(store.db) == []
    assert outbox.last_sequence(store.db) == 3
    assert [e.sequence for e in _append(store, clock)] == [4]


def test_pending_events_in_order_with_limit_and_cursor(store: Store, clock: ManualClock) -> None:
    _append(store, clock, 5)
    outbox.ack_events(store, [outbox.events(store.db)[1].event_id], clock.now())
    assert [e.sequence for e in outbox.pending_events(store.db)] == [1, 3, 4, 5]
    assert [e.sequence for e in outbox.pending_events(store.db, limit=2)] == [1, 3]
    assert [e.sequence for e in outbox.pending_events(store.db, after_sequence=3)] == [4, 5]


def test_ack_events_is_idempotent_and_ignores_unknown_ids(store: Store, clock: ManualClock) -> None:
    made = _append(store, clock, 3)
    ids = [made[0].event_id, made[2].event_id]
    assert outbox.ack_events(store, ids, clock.now()) == 2
    assert outbox.ack_events(store, ids, clock.now()) == 0
    assert outbox.ack_events(store, ["not-an-event", made[1].event_id], clock.now()) == 1
    assert outbox.ack_events(store, [], clock.now()) == 0
    assert [e.acked for e in outbox.events(store.db)] == [True, True, True]
    assert outbox.pending_events(store.db) == []


def test_ack_through_is_a_cursor_and_idempotent(store: Store, clock: ManualClock) -> None:
    _append(store, clock, 4)
    assert outbox.ack_through(store, 2, clock.now()) == 2
    assert outbox.ack_through(store, 2, clock.now()) == 0
    assert outbox.ack_through(store, 1, clock.now()) == 0  # a late, older cursor
    assert [e.sequence for e in outbox.pending_events(store.db)] == [3, 4]
    assert outbox.ack_through(store, 100, clock.now()) == 2
    assert outbox.pending_events(store.db) == []


def test_acks_work_inside_a_callers_transaction(store: Store, clock: ManualClock) -> None:
    made = _append(store, clock, 2)
    with store.transaction():
        assert outbox.ack_events(store, [made[0].event_id], clock.now()) == 1
        assert outbox.ack_through(store, 2, clock.now()) == 1
    assert outbox.pending_events(store.db) == []


def test_prune_keeps_unacknowledged_and_recent_events(store: Store, clock: ManualClock) -> None:
    old = _append(store, clock, 2)  # sequences 1, 2
    clock.advance(timedelta(days=2))
    recent = _append(store, clock, 2)  # sequences 3, 4
    outbox.ack_events(store, [old[0].event_id, recent[0].event_id], clock.now())
    cutoff = clock.now() - timedelta(days=1)
    assert outbox.prune_acked(store, cutoff) == 1
    assert [e.sequence for e in outbox.events(store.db)] == [2, 3, 4]
    assert outbox.prune_acked(store, cutoff) == 0


def test_events_newest_first_and_limited(store: Store, clock: ManualClock) -> None:
    _append(store, clock, 4)
    assert [e.sequence for e in outbox.events(store.db, newest_first=True, limit=2)] == [4, 3]
    assert [e.sequence for e in outbox.events(store.db, limit=3)] == [1, 2, 3]


def test_payloads_are_stored_as_their_models_json(store: Store, clock: ManualClock) -> None:
    when = clock.now()
    with store.transaction() as db:
        outbox.append_event(db, DoorLeftOpen(door=1, open_since=when), when)
    (stored,) = outbox.events(store.db)
    assert stored.payload == {
        "door": 1,
        "open_since": when.isoformat().replace("+00:00", "Z"),
        "operation_id": None,
    }
    assert DoorLeftOpen.model_validate(stored.payload).open_since == when


def test_a_payload_the_cloud_would_refuse_cannot_be_built(clock: ManualClock) -> None:
    with pytest.raises(ValidationError, match="door"):
        DoorLeftOpen(door=0, open_since=clock.now())
    with pytest.raises(ValidationError, match="open_since"):
        DoorLeftOpen.model_validate({"door": 1, "open_since": "2026-01-05T10:00:00"})
    with pytest.raises(ValidationError, match="since"):
        DoorLeftOpen.model_validate({"door": 1, "open_since": clock.now(), "since": 1})


def test_events_written_before_payload_versions_read_as_version_1(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT INTO outbox (event_id, type, payload, created_at) VALUES (?, ?, ?, ?)",
            ["e-old", "door_closed", '{"door":1}', to_db_time(clock.now())],
        )
    (stored,) = outbox.events(store.db)
    assert stored.version == 1
