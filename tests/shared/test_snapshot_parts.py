"""`shared.snapshot_parts`: a snapshot split into signed parts and assembled only when whole."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from shared.protocol import (
    CLOUD_SENDER,
    MAX_KIOSKS_PER_LOCATION,
    MAX_PAYLOAD_BYTES,
    AllocationState,
    Channel,
    MaintenanceState,
    MessageType,
    SnapshotBody,
    SnapshotPartBody,
    open_message,
    seal,
    topic,
)
from shared.signing import Signer
from shared.sizes import Size
from shared.snapshot_parts import InconsistentPart, SnapshotAssembly, split_snapshot
from shared.states import AllocationStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def snapshot(count: int, revision: int = 7000) -> SnapshotBody:
    return SnapshotBody(
        revision=revision,
        allocations=[
            AllocationState(
                allocation_id=str(uuid.uuid4()),
                kind="delivery",
                barcode=f"PKG-{n:06d}-{'x' * 40}",
                size=Size.SMALL,
                status=AllocationStatus.RESERVED,
                proposed_door=n + 1,
                code_hash="ab" * 32,
                reservation_expires_at=NOW,
            )
            for n in range(count)
        ],
        maintenance=[MaintenanceState(door=count + 1, reason="hinge")],
    )


def test_5000_allocations_go_in_signed_parts_each_within_the_payload_limit() -> None:
    signer = Signer.generate()
    body = snapshot(5000)
    whole = seal(
        signer, MessageType.SNAPSHOT, location_id="loc-a", sender=CLOUD_SENDER, body=body, now=NOW
    )
    assert len(whole) > MAX_PAYLOAD_BYTES  # what the cloud could not send before
    parts = split_snapshot(body)
    assert len(parts) == 20
    assembly = SnapshotAssembly()
    assembled = None
    for part in parts:
        payload = seal(
            signer,
            MessageType.SNAPSHOT_PART,
            location_id="loc-a",
            sender=CLOUD_SENDER,
            body=part,
            now=NOW,
        )
        assert len(payload) <= MAX_PAYLOAD_BYTES
        opened = open_message(
            payload,
            topic("loc-a", Channel.CLOUD_CHANGES),
            keys=lambda _loc, _sender: signer.verifier,
            now=NOW,
        )
        assert isinstance(opened.body, SnapshotPartBody)
        assembled = assembly.add(opened.body)
    assert assembled == body


def test_a_snapshot_is_whole_only_with_every_part_in_any_order_and_repeated() -> None:
    body = snapshot(1000)
    parts = split_snapshot(body, per_part=100)
    shuffled = parts + parts[:3]
    random.Random(5).shuffle(shuffled)
    assembly = SnapshotAssembly()
    results = [assembly.add(part) for part in shuffled]
    [complete_at] = [i for i, result in enumerate(results) if result is not None]
    assert len({part.part for part in shuffled[: complete_at + 1]}) == len(parts)
    assert results[complete_at] == body


def test_a_missing_part_leaves_the_snapshot_unapplied() -> None:
    parts = split_snapshot(snapshot(500), per_part=100)
    assembly = SnapshotAssembly()
    assert [assembly.add(part) for part in parts[:-1]] == [None] * 4
    assert assembly.pending() == {parts[0].snapshot_id: (4, 5)}


def test_a_part_contradicting_its_snapshot_is_refused() -> None:
    first, second = split_snapshot(snapshot(200), per_part=100)
    assembly = SnapshotAssembly()
    assembly.add(first)
    forged = second.model_copy(update={"revision": second.revision + 1})
    with pytest.raises(InconsistentPart):
        assembly.add(forged)


def test_an_older_unfinished_snapshot_gives_way_to_newer_ones() -> None:
    assembly = SnapshotAssembly()
    old = split_snapshot(snapshot(200, revision=10), per_part=100)
    assembly.add(old[0])
    for revision in (20, 30):
        assembly.add(split_snapshot(snapshot(200, revision=revision), per_part=100)[0])
    assert old[0].snapshot_id not in assembly.pending()
    assert len(assembly.pending()) == 2


def test_an_empty_snapshot_is_one_part() -> None:
    [only] = split_snapshot(SnapshotBody(revision=3, allocations=[], maintenance=[]))
    assert (only.part, only.parts) == (1, 1)
    assert SnapshotAssembly().add(only) == SnapshotBody(revision=3, allocations=[], maintenance=[])


def test_parts_of_the_largest_allocations_with_a_hash_per_kiosk_fit_the_payload_limit() -> None:
    """issue 9: each kiosk of a location adds its own code hash to every allocation. With the
    most kiosks a location may have, ids of 64 characters and the longest texts, 250 allocations
    no longer fit one part: the split counts bytes, not only allocations."""
    signer = Signer.generate()
    kiosks = [f"{n}{'k' * 63}" for n in range(MAX_KIOSKS_PER_LOCATION)]
    body = SnapshotBody(
        revision=9,
        allocations=[
            AllocationState(
                allocation_id=f"{n:06d}{'a' * 58}",
                kind="return",
                barcode=f"{n:06d}{'b' * 122}",
                size=Size.SMALL,
                status=AllocationStatus.RESERVED,
                proposed_door=n + 1,
                code_hash="ab" * 32,
                code_hashes=dict.fromkeys(kiosks, "cd" * 32),
                reservation_expires_at=NOW,
                pickup_expires_at=NOW,
                order_id="o" * 128,
                return_reason="r" * 500,
            )
            for n in range(600)
        ],
        maintenance=[],
    )
    parts = split_snapshot(body)
    for part in parts:
        payload = seal(
            signer,
            MessageType.SNAPSHOT_PART,
            location_id="l" * 64,
            sender=CLOUD_SENDER,
            body=part,
            now=NOW,
        )
        assert len(payload) <= MAX_PAYLOAD_BYTES
    assert sum(len(p.allocations) for p in parts) == 600
