"""Fixtures for the kiosk store tests: an in-memory `Store` on a `ManualClock`, with doors.

Every store here is a private in-memory SQLite database, migrated; tests that need the file
itself (WAL, the bytes on disk, re-opening) use ``tmp_path`` and `Store.open`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.store import CodeHasher, Store
from kiosk.store import doors as door_records
from shared.clock import ManualClock
from tests.kiosk.store_helpers import IDENTITY, LAYOUT, SECRET


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hasher() -> CodeHasher:
    return CodeHasher(SECRET)


@pytest.fixture
def bare_store(hasher: CodeHasher) -> Iterator[Store]:
    """A migrated in-memory store with no doors."""
    with Store.in_memory(hasher, IDENTITY) as store:
        yield store


@pytest.fixture
def store(bare_store: Store, clock: ManualClock) -> Store:
    """A migrated in-memory store with the doors of `LAYOUT`, all available."""
    with bare_store.transaction() as db:
        door_records.sync_layout(db, LAYOUT, clock.now())
    return bare_store
