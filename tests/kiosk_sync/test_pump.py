"""`OutboxPump` without a broker: batches, the in-flight window, resends and their backoff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.store import CodeHasher, KioskIdentity, Store, outbox
from kiosk.sync.pump import OutboxPump
from shared.events import DoorClosed

from .conftest import SECRET

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.in_memory(CodeHasher(SECRET), KioskIdentity("loc-a", "kiosk-a")) as store:
        with store.transaction() as db:
            for door in range(250):
                outbox.append_event(db, DoorClosed(door=door + 1), T0)
        yield store


def spans(batches: list[list[outbox.OutboxEvent]]) -> list[tuple[int, int]]:
    return [(b[0].sequence, b[-1].sequence) for b in batches]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_resends_back_off_while_no_ack_comes_and_recover_on_progress(store: Store) -> None:
    pump = OutboxPump(store, ack_timeout=timedelta(seconds=5))
    assert spans(pump.due(at(0))) == [(1, 100), (101, 200), (201, 250)]
    assert pump.due(at(4)) == []
    assert spans(pump.due(at(5))) == [(1, 100), (101, 200), (201, 250)]  # no ack in 5 s
    assert pump.due(at(14)) == []  # the wait doubled to 10 s
    assert spans(pump.due(at(15)))[0] == (1, 100)
    assert pump.acknowledged(100, at(16)) == 100
    assert pump.due(at(20)) == []  # progress: a fresh 5 s for the rest
    assert spans(pump.due(at(21))) == [(101, 200), (201, 250)]
    assert pump.depth() == 150


def test_at_most_a_window_of_events_is_in_flight(store: Store) -> None:
    pump = OutboxPump(store, window=150)
    assert spans(pump.due(at(0))) == [(1, 100), (101, 150)]
    assert pump.due(at(1)) == []
    pump.acknowledged(100, at(2))
    assert spans(pump.due(at(2))) == [(151, 250)]


def test_a_new_connection_starts_again_from_the_lowest_pending(store: Store) -> None:
    pump = OutboxPump(store)
    pump.due(at(0))
    pump.acknowledged(120, at(1))
    pump.reset()
    assert spans(pump.due(at(2))) == [(121, 220), (221, 250)]


def test_acknowledged_events_are_pruned_after_the_retention(store: Store) -> None:
    pump = OutboxPump(store, retention=timedelta(hours=1), prune_every=timedelta(0))
    pump.due(at(0))
    pump.acknowledged(250, at(60))
    assert len(outbox.events(store.db)) == 250  # acknowledged, kept for an hour
    pump.acknowledged(250, at(3601))
    assert outbox.events(store.db) == []


def test_an_ack_stopping_short_of_events_sent_a_while_ago_resends_them_at_once(
    store: Store,
) -> None:
    """A worker that subscribed after the events went out (broker or cloud restart) answers the
    kiosk's birth with its cursor: the events are resent then, not after the ack timeout."""
    pump = OutboxPump(store, ack_timeout=timedelta(seconds=5))
    pump.due(at(0))
    assert pump.acknowledged(0, at(1)) == 0  # the cloud is up and has none of them
    assert spans(pump.due(at(1))) == [(1, 100), (101, 200), (201, 250)]


def test_an_ack_right_after_sending_waits_a_moment_before_resending(store: Store) -> None:
    pump = OutboxPump(store, ack_timeout=timedelta(seconds=5))
    pump.due(at(0))
    pump.acknowledged(0, at(0.1))  # may answer an earlier message: not yet
    assert pump.due(at(0.3)) == []
    assert spans(pump.due(at(0.5)))[0] == (1, 100)  # still short half a second after sending
