"""Door operations: one active per door, states that only move forward, retries, attempts."""

from __future__ import annotations

import sqlite3
from itertools import product

import pytest

from kiosk.store import NotInTransaction, Store, operations
from kiosk.store import allocations as alloc
from kiosk.store.records import ACTIVE_OPERATION_STATES, Actor, OperationState, Purpose
from shared.clock import ManualClock
from tests.kiosk.store_helpers import apply

S = OperationState

ALLOWED = {
    (S.UNLOCKING, S.OPEN),
    (S.UNLOCKING, S.NOT_DETECTED),
    (S.UNLOCKING, S.FAILED),
    (S.UNLOCKING, S.COMPLETED),
    (S.UNLOCKING, S.ABANDONED),
    (S.NOT_DETECTED, S.UNLOCKING),
    (S.NOT_DETECTED, S.OPEN),
    (S.NOT_DETECTED, S.FAILED),
    (S.NOT_DETECTED, S.COMPLETED),
    (S.NOT_DETECTED, S.ABANDONED),
    (S.FAILED, S.UNLOCKING),
    (S.FAILED, S.OPEN),
    (S.FAILED, S.NOT_DETECTED),
    (S.FAILED, S.COMPLETED),
    (S.FAILED, S.ABANDONED),
    (S.OPEN, S.COMPLETED),
    (S.OPEN, S.ABANDONED),
}

# How to bring a fresh (unlocking) operation to each state.
PATH_TO = {
    S.UNLOCKING: [],
    S.OPEN: [S.OPEN],
    S.NOT_DETECTED: [S.NOT_DETECTED],
    S.FAILED: [S.FAILED],
    S.COMPLETED: [S.OPEN, S.COMPLETED],
    S.ABANDONED: [S.ABANDONED],
}


def _create(store: Store, clock: ManualClock, door: int = 1, **extra: object) -> str:
    with store.transaction() as db:
        operation = operations.create_operation(
            db,
            door=door,
            purpose=Purpose.PICKUP,
            actor=Actor.CUSTOMER,
            now=clock.now(),
            **extra,
        )
    return operation.operation_id


def _walk(store: Store, clock: ManualClock, operation_id: str, states: list[S]) -> None:
    with store.transaction() as db:
        for state in states:
            assert operations.transition(db, operation_id, state, clock.now()) is True


def test_a_new_operation_is_unlocking_with_no_attempts(store: Store, clock: ManualClock) -> None:
    operation_id = _create(store, clock, door=3)
    operation = operations.get_operation(store.db, operation_id)
    assert (operation.door, operation.state, operation.attempts) == (3, S.UNLOCKING, 0)
    assert (operation.purpose, operation.actor) == (Purpose.PICKUP, Actor.CUSTOMER)
    assert operation.created_at == clock.now()
    assert operation.opened_at is None
    assert operation.finished_at is None
    assert operations.active_operation(store.db, 3) == operation


def test_creating_needs_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        operations.create_operation(
            store.db, door=1, purpose=Purpose.OPEN, actor=Actor.STAFF, now=clock.now()
        )
    assert operations.active_operations(store.db) == []


@pytest.mark.parametrize(("current", "target"), list(product(S, S)))
def test_transition_allows_exactly_the_forward_moves(
    store: Store, clock: ManualClock, current: S, target: S
) -> None:
    operation_id = _create(store, clock)
    _walk(store, clock, operation_id, PATH_TO[current])
    before = operations.get_operation(store.db, operation_id)
    assert before.state is current
    clock.advance(1)
    with store.transaction() as db:
        changed = operations.transition(db, operation_id, target, clock.now())
    after = operations.get_operation(store.db, operation_id)
    assert changed is ((current, target) in ALLOWED)
    assert after.state is (target if changed else current)
    if not changed:
        assert after == before


def test_opening_stamps_opened_at_once(store: Store, clock: ManualClock) -> None:
    operation_id = _create(store, clock)
    opened_at = clock.advance(1)
    _walk(store, clock, operation_id, [S.OPEN])
    clock.advance(30)
    _walk(store, clock, operation_id, [S.COMPLETED])
    operation = operations.get_operation(store.db, operation_id)
    assert operation.opened_at == opened_at
    assert operation.finished_at == clock.now()


def test_a_final_state_keeps_its_outcome(store: Store, clock: ManualClock) -> None:
    operation_id = _create(store, clock)
    with store.transaction() as db:
        operations.transition(db, operation_id, S.FAILED, clock.now(), outcome="board timeout")
        operations.transition(db, operation_id, S.ABANDONED, clock.now())
    operation = operations.get_operation(store.db, operation_id)
    assert (operation.state, operation.outcome) == (S.ABANDONED, "board timeout")
    assert operation.finished_at == clock.now()
    assert operation.opened_at is None


def test_a_late_not_detected_cannot_undo_an_opening(store: Store, clock: ManualClock) -> None:
    operation_id = _create(store, clock)
    _walk(store, clock, operation_id, [S.OPEN])
    with store.transaction() as db:
        assert operations.transition(db, operation_id, S.NOT_DETECTED, clock.now()) is False
    assert operations.get_operation(store.db, operation_id).state is S.OPEN


def test_transition_of_an_unknown_operation_raises(store: Store, clock: ManualClock) -> None:
    with pytest.raises(operations.UnknownOperation) as info, store.transaction() as db:
        operations.transition(db, "nope", S.OPEN, clock.now())
    assert info.value.operation_id == "nope"


def test_transition_needs_a_transaction(store: Store, clock: ManualClock) -> None:
    operation_id = _create(store, clock)
    with pytest.raises(NotInTransaction):
        operations.transition(store.db, operation_id, S.OPEN, clock.now())
    assert operations.get_operation(store.db, operation_id).state is S.UNLOCKING


@pytest.mark.parametrize("retried", [S.NOT_DETECTED, S.FAILED])
def test_count_attempt_puts_a_failed_pulse_back_to_unlocking(
    store: Store, clock: ManualClock, retried: S
) -> None:
    operation_id = _create(store, clock)
    with store.transaction() as db:
        assert operations.count_attempt(db, operation_id, clock.now()).attempts == 1
        operations.transition(db, operation_id, retried, clock.now())
        again = operations.count_attempt(db, operation_id, clock.now())
    assert (again.state, again.attempts) == (S.UNLOCKING, 2)


def test_count_attempt_on_an_open_operation_only_counts(store: Store, clock: ManualClock) -> None:
    operation_id = _create(store, clock)
    _walk(store, clock, operation_id, [S.OPEN])
    with store.transaction() as db:
        counted = operations.count_attempt(db, operation_id, clock.now())
    assert (counted.state, counted.attempts) == (S.OPEN, 1)


def test_one_active_operation_per_door(store: Store, clock: ManualClock) -> None:
    first = _create(store, clock, door=2)
    with pytest.raises(sqlite3.IntegrityError):
        _create(store, clock, door=2)
    _create(store, clock, door=3)  # another door is fine
    for state in (S.NOT_DETECTED, S.FAILED, S.OPEN):
        _walk(store, clock, first, [state])
        with pytest.raises(sqlite3.IntegrityError):
            _create(store, clock, door=2)
    _walk(store, clock, first, [S.COMPLETED])
    second = _create(store, clock, door=2)
    active = operations.active_operation(store.db, 2)
    assert active is not None
    assert active.operation_id == second


def test_the_database_refuses_a_second_active_operation_whatever_the_code(
    store: Store, clock: ManualClock
) -> None:
    _create(store, clock, door=4)
    for state in ACTIVE_OPERATION_STATES:
        with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
            db.execute(
                "INSERT INTO door_operations (operation_id, door, purpose, actor, state,"
                " created_at) VALUES (?, 4, 'open', 'staff', ?, 'x')",
                [f"raw-{state}", state.value],
            )
    with store.transaction() as db:
        db.execute(
            "INSERT INTO door_operations (operation_id, door, purpose, actor, state,"
            " created_at) VALUES ('done', 4, 'open', 'staff', 'completed', 'x')"
        )


def test_an_operation_needs_a_known_door(store: Store, clock: ManualClock) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        _create(store, clock, door=99)


def test_listing_operations(store: Store, clock: ManualClock) -> None:
    first = _create(store, clock, door=1, code_id=None, allocation_id=None)
    clock.advance(1)
    second = _create(store, clock, door=2)
    clock.advance(1)
    third = _create(store, clock, door=3)
    _walk(store, clock, second, [S.ABANDONED])
    assert [o.operation_id for o in operations.active_operations(store.db)] == [first, third]
    assert [o.operation_id for o in operations.recent_operations(store.db)] == [
        third,
        second,
        first,
    ]
    assert [o.operation_id for o in operations.recent_operations(store.db, limit=1)] == [third]
    assert operations.active_operation(store.db, 2) is None


def test_operations_are_found_by_code_and_by_allocation(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=1, code="K7XW9P")
    apply(store, clock, "a2", 2, door=2, code="K7XW9P")
    code_id = alloc.get_allocation(store.db, "a1").code_id
    assert code_id is not None
    one = _create(store, clock, door=1, allocation_id="a1", code_id=code_id)
    clock.advance(1)
    two = _create(store, clock, door=2, allocation_id="a2", code_id=code_id)
    assert [o.operation_id for o in operations.operations_for_code(store.db, code_id)] == [
        one,
        two,
    ]
    assert [o.operation_id for o in operations.operations_for_allocation(store.db, "a2")] == [two]
    assert operations.operations_for_allocation(store.db, "zz") == []
