"""`kiosk.sync.deferred` on an in-memory store: a cloud change the kiosk cannot apply now is kept
and applied when its blocker ends, in revision order per parcel; one refused for good is
reported to the cloud (``docs/protocol.md``, "Deferred changes")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.flows.context import FlowContext
from kiosk.flows.opening import begin_opening
from kiosk.hardware.door_bank import DoorState, LockState
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.monitor import record_reading, sweep
from kiosk.store import CodeHasher, KioskIdentity, Store, allocations, doors, operations, outbox
from kiosk.store.records import Actor, OperationState, Purpose
from kiosk.sync import deferred
from kiosk.sync.apply import apply_changes, apply_snapshot
from shared.clock import ManualClock
from shared.events import EventType
from shared.protocol import AllocationChange, ChangesBody, MaintenanceChange, SnapshotBody
from shared.states import AllocationStatus, DoorStatus

from .conftest import LAYOUT, SECRET, allocation

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPEN = DoorState(LockState.OPEN)


@pytest.fixture
def ctx() -> Iterator[FlowContext]:
    with Store.in_memory(CodeHasher(SECRET), KioskIdentity("loc-a", "kiosk-a")) as store:
        with store.transaction() as db:
            doors.sync_layout(db, LAYOUT, NOW)
        yield FlowContext(store, FakeDoorBank(sorted(LAYOUT)), ManualClock(NOW))


def body(first: int, *entries: AllocationChange | MaintenanceChange) -> ChangesBody:
    return ChangesBody(
        from_revision=first - 1, to_revision=first + len(entries) - 1, changes=list(entries)
    )


def alloc(revision: int, allocation_id: str, **fields: object) -> AllocationChange:
    return AllocationChange(revision=revision, allocation=allocation(allocation_id, **fields))  # type: ignore[arg-type]


def driver_opens(ctx: FlowContext, allocation_id: str, door: int) -> None:
    """A driver scanned the parcel: its door is commanded open and seen open."""
    with ctx.store.transaction() as db:
        begin_opening(
            ctx,
            db,
            door=door,
            purpose=Purpose.DROP_OFF,
            actor=Actor.DRIVER,
            allocation_id=allocation_id,
        )
    record_reading(ctx, door, OPEN)


def shut(ctx: FlowContext, door: int, *, occupied: bool) -> None:
    record_reading(ctx, door, DoorState(LockState.LOCKED, occupied=occupied))


def refusals(ctx: FlowContext) -> list[dict[str, object]]:
    return [
        dict(event.payload)
        for event in outbox.events(ctx.store.db)
        if event.type is EventType.CLOUD_CHANGE_REFUSED
    ]


def status(ctx: FlowContext, allocation_id: str) -> AllocationStatus:
    return allocations.get_allocation(ctx.store.db, allocation_id).status


def test_a_cancel_while_the_door_is_open_applies_when_the_door_shuts_empty(
    ctx: FlowContext,
) -> None:
    """The issue's repro: the cancel used to be refused and lost; the stores stayed apart."""
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1)), NOW)
    driver_opens(ctx, "x", 1)
    result = apply_changes(
        ctx.store, body(2, alloc(2, "x", status=AllocationStatus.CANCELLED)), NOW
    )
    assert result.refused == ()
    assert status(ctx, "x") is AllocationStatus.RESERVED
    [kept] = deferred.kept(ctx.store.db)
    assert (kept.revision, kept.subject, kept.reason) == (
        2,
        "allocation:x",
        "its door is being used right now",
    )
    shut(ctx, 1, occupied=False)
    assert status(ctx, "x") is AllocationStatus.CANCELLED
    assert doors.get_door(ctx.store.db, 1).status is DoorStatus.AVAILABLE
    assert deferred.kept(ctx.store.db) == []
    assert refusals(ctx) == []


def test_a_deferred_cancel_of_a_parcel_put_in_is_refused_and_reported(ctx: FlowContext) -> None:
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1)), NOW)
    driver_opens(ctx, "x", 1)
    apply_changes(ctx.store, body(2, alloc(2, "x", status=AllocationStatus.CANCELLED)), NOW)
    shut(ctx, 1, occupied=True)
    assert status(ctx, "x") is AllocationStatus.DEPOSITED
    assert deferred.kept(ctx.store.db) == []
    [report] = refusals(ctx)
    assert report["revision"] == 2
    assert report["allocation_id"] == "x"
    assert report["deferred"] is True
    assert "deposited" in str(report["reason"])


def test_later_changes_of_the_same_parcel_wait_behind_the_deferred_one(ctx: FlowContext) -> None:
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1), alloc(2, "y", door=2)), NOW)
    driver_opens(ctx, "x", 1)
    # Revision 3 cancels x (blocked); 4 changes y (applies at once); 5 is x again (waits).
    apply_changes(
        ctx.store,
        body(
            3,
            alloc(3, "x", status=AllocationStatus.CANCELLED),
            alloc(4, "y", door=3, size="medium"),
            alloc(5, "x", status=AllocationStatus.CANCELLED, door=4),
        ),
        NOW,
    )
    assert allocations.get_allocation(ctx.store.db, "y").door == 3
    kept = deferred.kept(ctx.store.db)
    assert [(k.revision, k.subject) for k in kept] == [(3, "allocation:x"), (5, "allocation:x")]
    assert kept[1].reason == "waits for revision 3"
    shut(ctx, 1, occupied=False)
    current = allocations.get_allocation(ctx.store.db, "x")
    assert (current.status, current.revision) == (AllocationStatus.CANCELLED, 5)
    assert deferred.kept(ctx.store.db) == []


def test_maintenance_of_a_door_in_use_applies_once_it_shuts(ctx: FlowContext) -> None:
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1)), NOW)
    driver_opens(ctx, "x", 1)
    shut(ctx, 1, occupied=False)  # x stays reserved on door 1
    driver_opens(ctx, "x", 1)
    apply_changes(ctx.store, body(2, MaintenanceChange(revision=2, door=1, on=True)), NOW)
    assert doors.get_door(ctx.store.db, 1).status is DoorStatus.RESERVED
    shut(ctx, 1, occupied=False)
    assert doors.get_door(ctx.store.db, 1).status is DoorStatus.MAINTENANCE
    assert allocations.get_allocation(ctx.store.db, "x").door is None


def test_a_change_blocked_by_a_door_that_never_opened_applies_when_it_is_abandoned(
    ctx: FlowContext,
) -> None:
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1)), NOW)
    with ctx.store.transaction() as db:
        pending = begin_opening(
            ctx, db, door=1, purpose=Purpose.DROP_OFF, actor=Actor.DRIVER, allocation_id="x"
        )
        # The pulse went out; the sensor never saw the door open.
        operations.transition(db, pending.operation.operation_id, OperationState.NOT_DETECTED, NOW)
    apply_changes(ctx.store, body(2, alloc(2, "x", status=AllocationStatus.CANCELLED)), NOW)
    assert status(ctx, "x") is AllocationStatus.RESERVED
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(ctx.rules.abandon_after + timedelta(seconds=1))
    sweep(ctx)
    assert status(ctx, "x") is AllocationStatus.CANCELLED


def test_a_change_refused_on_arrival_is_reported(ctx: FlowContext) -> None:
    apply_changes(ctx.store, body(1, MaintenanceChange(revision=1, door=99, on=True)), NOW)
    [report] = refusals(ctx)
    assert report == {
        "revision": 1,
        "allocation_id": None,
        "door": 99,
        "reason": "no such door here",
        "deferred": False,
    }


def test_a_snapshot_defers_the_cancel_of_a_reservation_whose_door_is_in_use(
    ctx: FlowContext,
) -> None:
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1)), NOW)
    driver_opens(ctx, "x", 1)
    result = apply_snapshot(
        ctx.store, SnapshotBody(revision=9, allocations=[], maintenance=[]), NOW
    )
    assert result.kept == ("x",)
    shut(ctx, 1, occupied=False)
    assert status(ctx, "x") is AllocationStatus.CANCELLED


def test_kept_changes_survive_a_restart_and_apply_at_the_next_checkpoint(
    ctx: FlowContext,
) -> None:
    apply_changes(ctx.store, body(1, alloc(1, "x", door=1), alloc(2, "y", door=2)), NOW)
    driver_opens(ctx, "x", 1)
    apply_changes(ctx.store, body(3, alloc(3, "x", status=AllocationStatus.CANCELLED)), NOW)
    # The operation ends without this kiosk's monitor seeing it (e.g. settled at boot by a
    # reconciliation of an older firmware): the next checkpoint retries first.
    with ctx.store.transaction() as db:
        db.execute("UPDATE door_operations SET state = 'abandoned' WHERE door = 1")
    apply_changes(ctx.store, body(4, alloc(4, "y", door=3, size="medium")), NOW)
    assert status(ctx, "x") is AllocationStatus.CANCELLED


def test_a_late_cancel_of_an_allocation_the_kiosk_never_knew_is_kept_not_lost(
    ctx: FlowContext,
) -> None:
    """Reserved and cancelled in the cloud while this kiosk was away: the cancel arrives for an
    allocation it never had. It is recorded (cancelled, holding no door), its revision consumed,
    and nothing is reported as refused; a late copy of the reservation is stale."""
    apply_changes(
        ctx.store, body(1, alloc(1, "never-seen", status=AllocationStatus.CANCELLED)), NOW
    )
    current = allocations.get_allocation(ctx.store.db, "never-seen")
    assert (current.status, current.door, current.revision) == (AllocationStatus.CANCELLED, None, 1)
    assert refusals(ctx) == []
    from kiosk.store import changes as store_changes

    late = deferred.apply_change(ctx.store, alloc(1, "never-seen", door=1), NOW)
    assert late.outcome is store_changes.ApplyOutcome.STALE
    assert status(ctx, "never-seen") is AllocationStatus.CANCELLED


async def test_a_change_kept_before_a_restart_applies_when_boot_reconciliation_settles_its_door(
    ctx: FlowContext,
) -> None:
    from kiosk.reconcile import reconcile

    apply_changes(ctx.store, body(1, alloc(1, "x", door=1)), NOW)
    driver_opens(ctx, "x", 1)
    apply_changes(ctx.store, body(2, alloc(2, "x", status=AllocationStatus.CANCELLED)), NOW)
    # The kiosk restarts; meanwhile the driver shut the door with nothing inside, as the
    # occupancy sensors of the restarted kiosk's bank read it.
    rebooted = FlowContext(
        ctx.store, FakeDoorBank(sorted(LAYOUT), occupancy_sensors=True), ManualClock(NOW)
    )
    await reconcile(rebooted)
    assert status(ctx, "x") is AllocationStatus.CANCELLED
    assert deferred.kept(ctx.store.db) == []
