"""Pickup and return codes: kept only as keyed hashes, shared by a customer's parcels, used once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.store import CodeHasher, NotInTransaction, Store, audit, codes
from kiosk.store import allocations as alloc
from kiosk.store import doors as door_records
from kiosk.store.code_hash import MIN_SECRET_BYTES, code_reference
from kiosk.store.records import Actor, AllocationKind, CodeKind
from shared.clock import ManualClock
from shared.codes import PickupCode
from shared.states import AllocationStatus
from tests.kiosk.store_helpers import IDENTITY, LAYOUT, SECRET, apply

# Letters in every code, so none can show up by chance in hex digests or timestamps.
CODE = "K7XW9P"
OTHER_CODE = "HQ4MZT"


# --- the hasher ---


def test_hash_is_hmac_sha256_hex_and_depends_on_the_secret() -> None:
    code = PickupCode(CODE)
    first = CodeHasher(SECRET).hash(code)
    assert len(first) == 64
    assert int(first, 16) >= 0
    assert CodeHasher(SECRET).hash(code) == first
    assert CodeHasher(SECRET + "x").hash(code) != first
    assert CodeHasher(SECRET).hash(PickupCode(OTHER_CODE)) != first
    assert CODE not in first


def test_text_and_bytes_secrets_hash_alike() -> None:
    code = PickupCode(CODE)
    assert CodeHasher(SECRET).hash(code) == CodeHasher(SECRET.encode()).hash(code)


def test_fingerprint_identifies_the_secret_and_differs_from_any_code_hash() -> None:
    hasher = CodeHasher(SECRET)
    assert hasher.fingerprint() == CodeHasher(SECRET).fingerprint()
    assert hasher.fingerprint() != CodeHasher(SECRET + "x").fingerprint()
    assert SECRET not in hasher.fingerprint()


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match=str(MIN_SECRET_BYTES)):
        CodeHasher("x" * (MIN_SECRET_BYTES - 1))
    CodeHasher("x" * MIN_SECRET_BYTES)


def test_the_hasher_never_shows_its_secret() -> None:
    assert SECRET not in repr(CodeHasher(SECRET))


def test_code_reference_is_a_short_prefix() -> None:
    digest = CodeHasher(SECRET).hash(PickupCode(CODE))
    assert code_reference(digest) == digest[:8]


# --- code rows ---


def _hash(store: Store, code: str = CODE) -> str:
    return store.hasher.hash(PickupCode(code))


def test_attach_code_creates_one_live_row_and_reuses_it(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        first = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
        again = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
    assert first == again
    record = codes.get_code(store.db, first)
    assert (record.kind, record.code_hash, record.used_at) == (
        CodeKind.PICKUP,
        _hash(store),
        None,
    )
    assert codes.find_code(store.db, _hash(store)) == record


def test_code_writes_need_a_transaction(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotInTransaction):
        codes.attach_code(store.db, _hash(store), CodeKind.PICKUP, clock.now())
    assert codes.find_code(store.db, _hash(store)) is None


def test_a_code_of_the_other_kind_retires_the_live_row(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        pickup = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
        returned = codes.attach_code(db, _hash(store), CodeKind.RETURN, clock.now())
    assert returned != pickup
    assert codes.get_code(store.db, pickup).used_at == clock.now()
    found = codes.find_code(store.db, _hash(store))
    assert found is not None
    assert (found.code_id, found.kind) == (returned, CodeKind.RETURN)


def test_the_database_allows_one_live_row_per_hash(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute(
            "INSERT INTO codes (kind, code_hash, created_at) VALUES ('pickup', ?, 'x')",
            [_hash(store)],
        )


def test_only_hashes_fit_in_the_code_column(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute(
            "INSERT INTO codes (kind, code_hash, created_at) VALUES ('pickup', ?, 'x')", [CODE]
        )


def test_a_used_code_is_not_found_live_again(store: Store, clock: ManualClock) -> None:
    with store.transaction() as db:
        code_id = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
    used_at = clock.advance(60)
    with store.transaction() as db:
        codes.mark_used(db, code_id, used_at)
    clock.advance(60)
    with store.transaction() as db:
        codes.mark_used(db, code_id, clock.now())  # a second use keeps the first stamp
    found = codes.find_code(store.db, _hash(store))
    assert found is not None
    assert found.code_id == code_id
    assert found.used_at == used_at


def test_the_same_code_issued_again_gets_a_new_row_found_first(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        old = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
        codes.mark_used(db, old, clock.now())
    clock.advance(86400)
    with store.transaction() as db:
        new = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
    assert new != old
    found = codes.find_code(store.db, _hash(store))
    assert found is not None
    assert (found.code_id, found.used_at) == (new, None)
    assert codes.get_code(store.db, old).used_at is not None


def test_release_makes_a_used_code_live_again_unless_reissued(
    store: Store, clock: ManualClock
) -> None:
    with store.transaction() as db:
        code_id = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
        assert codes.release(db, code_id) is True  # never used: nothing to do
        codes.mark_used(db, code_id, clock.now())
        assert codes.release(db, code_id) is True
    assert codes.get_code(store.db, code_id).used_at is None
    with store.transaction() as db:
        codes.mark_used(db, code_id, clock.now())
        newer = codes.attach_code(db, _hash(store), CodeKind.PICKUP, clock.now())
        assert codes.release(db, code_id) is False
    assert codes.get_code(store.db, code_id).used_at is not None
    found = codes.find_code(store.db, _hash(store))
    assert found is not None
    assert found.code_id == newer


def test_get_code_of_an_unknown_row_raises(store: Store) -> None:
    with pytest.raises(LookupError):
        codes.get_code(store.db, 12345)


# --- codes arriving with allocations ---


def test_parcels_of_one_customer_share_one_code_row(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "a1", 1, door=1, code=CODE)
    apply(store, clock, "a2", 2, door=2, code=CODE)
    apply(store, clock, "a3", 3, door=3, code=OTHER_CODE)
    first = alloc.get_allocation(store.db, "a1").code_id
    assert first is not None
    assert alloc.get_allocation(store.db, "a2").code_id == first
    assert alloc.get_allocation(store.db, "a3").code_id != first
    assert store.db.execute("SELECT count(*) FROM codes").fetchone() == (2,)
    assert [a.allocation_id for a in alloc.allocations_with_code(store.db, first)] == ["a1", "a2"]


def test_a_return_code_is_stored_as_a_return_code(store: Store, clock: ManualClock) -> None:
    apply(store, clock, "r1", 1, code=CODE, kind=AllocationKind.RETURN)
    code_id = alloc.get_allocation(store.db, "r1").code_id
    assert code_id is not None
    assert codes.get_code(store.db, code_id).kind is CodeKind.RETURN


def test_a_late_update_of_a_picked_up_parcel_does_not_revive_its_code(
    store: Store, clock: ManualClock
) -> None:
    apply(store, clock, "a1", 1, door=1, code=CODE, status=AllocationStatus.DEPOSITED)
    code_id = alloc.get_allocation(store.db, "a1").code_id
    assert code_id is not None
    with store.transaction() as db:  # picked up here while the cloud was unreachable
        codes.mark_used(db, code_id, clock.now())
        alloc.move(db, "a1", AllocationStatus.PICKED_UP, clock.now())
    # The cloud, not knowing yet, extends the pickup window and sends the code again.
    apply(store, clock, "a1", 2, door=1, code=CODE, status=AllocationStatus.DEPOSITED)
    found = codes.find_code(store.db, _hash(store))
    assert found is not None
    assert found.used_at is not None
    assert store.db.execute("SELECT count(*) FROM codes WHERE used_at IS NULL").fetchone() == (0,)


@pytest.mark.parametrize(
    "status", [AllocationStatus.CANCELLED, AllocationStatus.PICKED_UP, AllocationStatus.COLLECTED]
)
def test_a_finished_allocation_from_the_cloud_brings_no_live_code(
    store: Store, clock: ManualClock, status: AllocationStatus
) -> None:
    apply(store, clock, "a1", 1, code=CODE, status=status)
    assert alloc.get_allocation(store.db, "a1").status is status
    assert codes.find_code(store.db, _hash(store)) is None


def test_the_plaintext_code_is_nowhere_in_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.db"
    clock = ManualClock()
    with Store.open(path, CodeHasher(SECRET), IDENTITY) as store:
        with store.transaction() as db:
            door_records.sync_layout(db, LAYOUT, clock.now())
        apply(store, clock, "a1", 1, door=1, code=CODE)
        apply(store, clock, "a2", 2, door=2, code=CODE, status=AllocationStatus.DEPOSITED)
        apply(store, clock, "r1", 3, code=OTHER_CODE, kind=AllocationKind.RETURN)
        with store.transaction() as db:
            audit.record_entry(db, clock.now(), Actor.CUSTOMER, "code_entry", "accepted")
        # Before a checkpoint the rows live in the write-ahead log: read it too.
        written = b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file())
        assert len(written) > 4096
        hashes = {row[0] for row in store.db.execute("SELECT code_hash FROM codes")}
        assert hashes == {_hash(store, CODE), _hash(store, OTHER_CODE)}
    on_disk = b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file())
    for text in (written, on_disk):
        for code in (CODE, OTHER_CODE):
            assert code.encode() not in text
            assert code.lower().encode() not in text
            assert code.encode("utf-16-le") not in text
    # The hash is there, so the search was looking at the right bytes.
    assert _hash_for(CODE).encode() in on_disk


def _hash_for(code: str) -> str:
    return CodeHasher(SECRET).hash(PickupCode(code))
