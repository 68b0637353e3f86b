"""The keypad guard: wrong codes counted in a window; the lockout survives restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.store import CodeHasher, NotInTransaction, Store, keypad
from shared.clock import ManualClock
from tests.kiosk.store_helpers import IDENTITY, SECRET

WINDOW = timedelta(minutes=10)


def _fail(store: Store, clock: ManualClock) -> int:
    with store.transaction() as db:
        return keypad.record_failure(db, clock.now(), WINDOW)


def test_a_new_keypad_is_unlocked_with_no_failures(store: Store) -> None:
    assert keypad.locked_until(store.db) is None
    assert keypad.failures(store.db) == 0


def test_failures_are_counted_within_the_window(store: Store, clock: ManualClock) -> None:
    assert [_fail(store, clock) for _ in range(3)] == [1, 2, 3]
    clock.advance(WINDOW - timedelta(seconds=1))
    assert _fail(store, clock) == 4
    assert keypad.failures(store.db) == 4


def test_failures_older_than_the_window_are_forgotten(store: Store, clock: ManualClock) -> None:
    _fail(store, clock)
    _fail(store, clock)
    clock.advance(WINDOW / 2)
    _fail(store, clock)
    clock.advance(WINDOW / 2)  # the first two are exactly a window old now
    assert _fail(store, clock) == 2
    clock.advance(WINDOW * 3)
    assert _fail(store, clock) == 1


def test_lock_sets_the_lockout_and_starts_counting_afresh(store: Store, clock: ManualClock) -> None:
    for _ in range(5):
        _fail(store, clock)
    until = clock.now() + timedelta(minutes=15)
    with store.transaction() as db:
        keypad.lock(db, until)
    assert keypad.locked_until(store.db) == until
    assert keypad.failures(store.db) == 0
    clock.advance(timedelta(minutes=20))
    # The lockout time stays readable after it passed; the flow compares it with now.
    assert keypad.locked_until(store.db) == until
    assert _fail(store, clock) == 1


def test_keypad_writes_need_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        keypad.record_failure(store.db, clock.now(), WINDOW)
    with pytest.raises(NotInTransaction):
        keypad.lock(store.db, clock.now())
    assert keypad.failures(store.db) == 0
    assert keypad.locked_until(store.db) is None


def test_the_lockout_and_the_count_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    clock = ManualClock()
    until = clock.now() + timedelta(minutes=15)
    with Store.open(path, CodeHasher(SECRET), IDENTITY) as store:
        _fail(store, clock)
        with store.transaction() as db:
            keypad.lock(db, until)
        _fail(store, clock)
    with Store.open(path, CodeHasher(SECRET), IDENTITY) as store:
        assert keypad.locked_until(store.db) == until
        assert keypad.failures(store.db) == 1
