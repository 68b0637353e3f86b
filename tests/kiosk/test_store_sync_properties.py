"""Property tests of invariant 5 on the store: changes may arrive twice, late or out of order,
and the kiosk ends where applying each once, in order, would have left it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.store import CodeHasher, Store, changes, outbox
from kiosk.store import allocations as alloc
from kiosk.store import doors as door_records
from kiosk.store.changes import AllocationUpdate
from kiosk.store.records import Actor, AllocationKind
from shared.clock import ManualClock
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus
from tests.kiosk.store_helpers import IDENTITY, LAYOUT, SECRET

A = AllocationStatus
CODES = ["K7XW9P", "HQ4MZT", "RB3NVC"]
# Each allocation owns a pair of doors, so no two compete for one and the kiosk's authority
# over doors (first come, first served) does not depend on the order of arrival.
DOOR_PAIRS = [(1, 2), (3, 4), (5, 6)]
SIZES_FOR_PAIR = [[Size.SMALL], [Size.SMALL, Size.MEDIUM], [Size.SMALL, Size.MEDIUM, Size.LARGE]]

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Change:
    """One entry of the location's change log; ``apply`` applies it at its revision."""

    revision: int
    kind: str
    args: tuple[Any, ...]

    def apply(self, store: Store, clock: ManualClock) -> changes.ApplyResult:
        if self.kind == "allocation":
            (update,) = self.args
            return changes.apply_allocation(store, update, self.revision, clock.now())
        if self.kind == "cancel":
            (allocation_id,) = self.args
            return changes.cancel_allocation(
                store, allocation_id, "cloud", self.revision, clock.now()
            )
        door, on = self.args
        return changes.set_door_maintenance(
            store,
            door,
            on,
            reason="remote",
            actor=Actor.REMOTE,
            now=clock.now(),
            revision=self.revision,
        )


@contextmanager
def _fresh_store() -> Iterator[tuple[Store, ManualClock]]:
    clock = ManualClock()
    with Store.in_memory(CodeHasher(SECRET), IDENTITY) as store:
        with store.transaction() as db:
            door_records.sync_layout(db, LAYOUT, clock.now())
        yield store, clock


def _state(store: Store) -> dict[str, Any]:
    """What must converge: every allocation as the kiosk acts on it, doors, the revision."""
    allocations = {}
    for a in alloc.list_allocations(store.db):
        live = a.status.holds_door
        code = None
        if live and a.code_id is not None:
            code = store.db.execute(
                "SELECT code_hash FROM codes WHERE code_id = ?", [a.code_id]
            ).fetchone()[0]
        allocations[a.allocation_id] = {
            "status": a.status,
            "revision": a.revision,
            "barcode": a.barcode,
            "size": a.size,
            "proposed_door": a.proposed_door,
            "reservation_expires_at": a.reservation_expires_at,
            "pickup_expires_at": a.pickup_expires_at,
            # A finished allocation's door and code are history, not state.
            "door": a.door if live else None,
            "code": code,
        }
    return {
        "allocations": allocations,
        "doors": [
            (d.number, d.status, d.maintenance_reason) for d in door_records.list_doors(store.db)
        ],
        "last_revision": changes.last_revision(store.db),
    }


Lane = list[tuple[str, tuple[Any, ...]]]


@st.composite
def allocation_lanes(draw: st.DrawFn, *, pairs: int, cancel_changes: bool) -> list[Lane]:
    """Per allocation, the successive changes the cloud makes to it, oldest first."""
    base = ManualClock().now()
    lanes = []
    for i in range(draw(st.integers(1, pairs))):
        allocation_id = f"a{i}"
        deposited = draw(st.booleans())  # known to the kiosk from a snapshot, already in its door
        size = draw(st.sampled_from(SIZES_FOR_PAIR[i]))
        door = draw(st.sampled_from(DOOR_PAIRS[i]))
        lane: Lane = []
        for step in range(draw(st.integers(1, 3))):
            if not deposited:  # a reservation may be resized and moved to another door
                size = draw(st.sampled_from(SIZES_FOR_PAIR[i]))
                door = draw(st.sampled_from(DOOR_PAIRS[i]))
            described = AllocationUpdate(
                allocation_id=allocation_id,
                kind=AllocationKind.DELIVERY,
                barcode=f"PKG-{i}-{draw(st.integers(0, 2))}",
                size=size,
                status=A.DEPOSITED if deposited else A.RESERVED,
                proposed_door=door,
                code=PickupCode(draw(st.sampled_from(CODES))),
                reservation_expires_at=base + timedelta(hours=step + 1),
                pickup_expires_at=base + timedelta(days=step + 1) if deposited else None,
            )
            lane.append(("allocation", (described,)))
        if draw(st.booleans()):  # the cloud ends it: an expiry or a cancellation
            if not deposited and cancel_changes and draw(st.booleans()):
                lane.append(("cancel", (allocation_id,)))
            else:
                ending = A.EXPIRED if deposited else A.CANCELLED
                lane.append(("allocation", (replace(described, status=ending),)))
        lanes.append(lane)
    return lanes


@st.composite
def change_logs(draw: st.DrawFn, *, with_maintenance: bool) -> list[Change]:
    """A change log: the lanes interleaved at random, numbered by revision from 1."""
    # With maintenance, the last pair of doors is left to it: doors 5 and 6 go in and out of
    # service while allocations use doors 1 to 4.
    lanes = draw(
        allocation_lanes(pairs=len(DOOR_PAIRS) - with_maintenance, cancel_changes=with_maintenance)
    )
    if with_maintenance:
        for door in DOOR_PAIRS[-1]:
            switches = draw(st.lists(st.booleans(), max_size=3))
            lanes.append([("maintenance", (door, on)) for on in switches])
    lanes = [lane for lane in lanes if lane]
    order = draw(st.permutations([i for i, lane in enumerate(lanes) for _ in lane]))
    cursors = [0] * len(lanes)
    log = []
    for revision, lane_index in enumerate(order, start=1):
        kind, args = lanes[lane_index][cursors[lane_index]]
        cursors[lane_index] += 1
        log.append(Change(revision, kind, args))
    return log


@st.composite
def deliveries(draw: st.DrawFn, log: list[Change], *, reorder: bool) -> list[Change]:
    """The log as the network delivers it: every change at least once, some twice or late."""
    n = len(log)
    first = [log[i] for i in draw(st.permutations(range(n)))] if reorder else list(log)
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n)), max_size=n))
    delivered = list(first)
    for which, where in extra:
        duplicate = log[which]
        if not reorder:
            # A duplicate arriving late: after its original, anywhere later.
            where = max(where, delivered.index(duplicate) + 1)
        delivered.insert(min(where, len(delivered)), duplicate)
    return delivered


def _run(changes_in_order: list[Change]) -> dict[str, Any]:
    with _fresh_store() as (store, clock):
        for change in changes_in_order:
            change.apply(store, clock)
            clock.advance(1)
        return {**_state(store), "events": [e.type for e in outbox.events(store.db)]}


@SETTINGS
@given(st.data())
def test_allocation_changes_duplicated_and_reordered_converge(data: st.DataObject) -> None:
    log = data.draw(change_logs(with_maintenance=False))
    delivered = data.draw(deliveries(log, reorder=True))
    once = _run(log)
    messy = _run(delivered)
    assert messy["allocations"] == once["allocations"]
    assert messy["doors"] == once["doors"]
    assert messy["last_revision"] == once["last_revision"] == len(log)
    # No door was contended, so neither run had anything to report.
    assert messy["events"] == once["events"] == []


@SETTINGS
@given(st.data())
def test_late_duplicates_of_any_change_change_nothing(data: st.DataObject) -> None:
    log = data.draw(change_logs(with_maintenance=True))
    delivered = data.draw(deliveries(log, reorder=False))
    once = _run(log)
    messy = _run(delivered)
    assert messy["allocations"] == once["allocations"]
    assert messy["doors"] == once["doors"]
    assert messy["last_revision"] == once["last_revision"] == len(log)
