"""Generations of the kiosk's code secret in the store (issue 9 rotation): a generation made
from the cloud's half once, codes found under every generation in use, a generation retired
only when no live code is hashed under it, and bad requests refused with nothing changed."""

from __future__ import annotations

import json

from kiosk.store import Store, code_secrets, codes, outbox
from kiosk.store.changes import AllocationUpdate, apply_allocation
from kiosk.store.records import AllocationKind
from kiosk.sync import deferred
from kiosk.sync.apply import apply_snapshot
from shared import code_secret_exchange as exchange
from shared.clock import ManualClock
from shared.codes import PickupCode, code_hash
from shared.protocol import CodeSecretRotationChange, CodeSecretRotationState, SnapshotBody
from shared.sizes import Size
from shared.states import AllocationStatus
from tests.kiosk.store_helpers import IDENTITY, SECRET


def _rotate(store: Store, clock: ManualClock, generation: int = 2) -> bytes:
    """Plays the cloud's side of the exchange; returns the secret both sides now hold."""
    private, public = exchange.new_half()
    change = CodeSecretRotationChange(
        revision=1, kiosk_id=IDENTITY.kiosk_id, generation=generation, cloud_public=public.hex()
    )
    assert deferred.apply_change(store, change, clock.now()).outcome == "applied"
    [answer] = [e for e in outbox.pending_events(store.db) if e.type == "code_secret_rotated"][-1:]
    secret = exchange.generation_secret(
        private, bytes.fromhex(answer.payload["kiosk_public"]), IDENTITY.kiosk_id, generation
    )
    assert answer.payload["fingerprint"] == exchange.secret_fingerprint(secret)
    return secret


def _parcel(store: Store, clock: ManualClock, secret: bytes, generation: int, n: int) -> str:
    code = PickupCode.generate()
    apply_allocation(
        store,
        AllocationUpdate(
            allocation_id=f"alloc-{n}",
            kind=AllocationKind.DELIVERY,
            barcode=f"PKG-{n}",
            size=Size.SMALL,
            status=AllocationStatus.RESERVED,
            code_hash=code_hash(secret, code),
            code_generation=generation,
        ),
        n,
        clock.now(),
    )
    return code.value


def _found(store: Store, code: str) -> bool:
    return codes.find_code_of(store.db, code_secrets.hashes_of(store, PickupCode(code))) is not None


def test_codes_of_both_generations_are_found_until_the_old_one_retires(
    store: Store, clock: ManualClock
) -> None:
    old = _parcel(store, clock, SECRET.encode(), 1, 10)
    secret = _rotate(store, clock)
    new = _parcel(store, clock, secret, 2, 11)
    assert _found(store, old)
    assert _found(store, new)
    assert not _found(store, PickupCode.generate().value)

    with store.transaction() as db:
        assert code_secrets.retire_unneeded(db, clock.now()) == []  # `old` is live
        db.execute("UPDATE allocations SET status = 'cancelled' WHERE allocation_id = 'alloc-10'")
        assert code_secrets.retire_unneeded(db, clock.now()) == [1]
        assert code_secrets.retire_unneeded(db, clock.now()) == []
    assert [g.generation for g in code_secrets.live_generations(store)] == [2]
    assert not _found(store, old)
    assert _found(store, new)


def test_the_newest_generation_is_never_retired_and_a_retired_one_loses_its_secret(
    store: Store, clock: ManualClock
) -> None:
    _rotate(store, clock, 2)
    _rotate(store, clock, 3)
    with store.transaction() as db:
        assert code_secrets.retire_unneeded(db, clock.now()) == [1, 2]
    rows = list(
        store.db.query(
            "SELECT generation, secret IS NULL AS wiped FROM code_secret_generations"
            " ORDER BY generation"
        )
    )
    assert [(r["generation"], r["wiped"]) for r in rows] == [(1, 1), (2, 1), (3, 0)]
    assert set(code_secrets.fingerprints(store.db)) == {2, 3}


def test_a_request_sent_again_or_for_another_kiosk_changes_nothing(
    store: Store, clock: ManualClock
) -> None:
    _, public = exchange.new_half()
    _rotate(store, clock, 2)
    before = len(outbox.pending_events(store.db))
    again = CodeSecretRotationChange(
        revision=2, kiosk_id=IDENTITY.kiosk_id, generation=2, cloud_public=public.hex()
    )
    other = CodeSecretRotationChange(
        revision=3, kiosk_id="kiosk-other", generation=5, cloud_public=public.hex()
    )
    for change in (again, other):
        assert deferred.apply_change(store, change, clock.now()).outcome == "unchanged"
    assert len(outbox.pending_events(store.db)) == before
    assert code_secrets.newest_generation(store.db) == 2


def test_a_public_half_that_is_not_a_key_is_refused_and_reported(
    store: Store, clock: ManualClock
) -> None:
    bad = CodeSecretRotationChange(
        revision=4, kiosk_id=IDENTITY.kiosk_id, generation=2, cloud_public="00" * 32
    )
    considered = deferred.consider(store, bad, clock.now())
    assert considered.result.outcome == "refused"
    assert code_secrets.newest_generation(store.db) == 1
    [report] = [e for e in outbox.pending_events(store.db) if e.type == "cloud_change_refused"]
    assert json.loads(json.dumps(report.payload))["revision"] == 4


def test_a_snapshot_brings_a_request_the_kiosk_missed(store: Store, clock: ManualClock) -> None:
    _, public = exchange.new_half()
    snapshot = SnapshotBody(
        revision=7,
        allocations=[],
        maintenance=[],
        code_secret_rotations=[
            CodeSecretRotationState(
                kiosk_id=IDENTITY.kiosk_id, generation=2, cloud_public=public.hex()
            )
        ],
    )
    assert apply_snapshot(store, snapshot, clock.now()).status == "applied"
    assert code_secrets.newest_generation(store.db) == 2
    assert [e.type for e in outbox.pending_events(store.db)] == ["code_secret_rotated"]
