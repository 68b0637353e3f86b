"""The door monitor's tamper and left-open alerts, and boot reconciliation after a crash."""

from __future__ import annotations

import asyncio
import copy
import random
from datetime import timedelta

from kiosk.flows import opening
from kiosk.flows.context import FlowContext
from kiosk.flows.pickup import pick_up
from kiosk.hardware.door_bank import DoorState
from kiosk.hardware.errors import BoardTimeout
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.monitor import DoorMonitor, sweep
from kiosk.reconcile import reconcile
from kiosk.store import allocations, audit, operations
from kiosk.store.records import Actor, EventType, OperationState, Purpose
from shared.states import AllocationStatus

from .conftest import FAST, LAYOUT, Kiosk, wait_for


async def test_a_door_opened_without_a_command_is_recorded_as_tamper(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    await kiosk.poll()
    fake_bank.open_by_hand(3)
    await kiosk.poll()

    [event] = kiosk.events(EventType.DOOR_TAMPERED)
    assert event.payload["door"] == 3
    assert kiosk.door(3).fault == "opened without a command"
    [entry] = audit.entries(kiosk.store.db, command="forced_open")
    assert entry.actor is Actor.KIOSK


async def test_a_door_left_open_raises_one_alert_per_opening(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    await kiosk.poll()
    fake_bank.open_by_hand(2)
    await kiosk.poll()
    kiosk.clock.advance(timedelta(seconds=119))
    sweep(kiosk.ctx)
    assert kiosk.events(EventType.DOOR_LEFT_OPEN) == []

    kiosk.clock.advance(timedelta(seconds=2))
    sweep(kiosk.ctx)
    sweep(kiosk.ctx)
    assert len(kiosk.events(EventType.DOOR_LEFT_OPEN)) == 1

    fake_bank.close(2)
    await kiosk.poll()
    fake_bank.open_by_hand(2)
    await kiosk.poll()
    kiosk.clock.advance(timedelta(minutes=3))
    sweep(kiosk.ctx)
    assert len(kiosk.events(EventType.DOOR_LEFT_OPEN)) == 2


async def test_the_running_monitor_completes_a_pickup_when_the_door_shuts(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    monitor = DoorMonitor(kiosk.ctx, interval_s=0.01)
    task = asyncio.create_task(monitor.run(await fake_bank.read_states()))
    try:
        await pick_up(kiosk.ctx, "ABC234")
        fake_bank.close(1)
        for _ in range(200):
            if (
                allocations.get_allocation(kiosk.store.db, "a1").status
                is AllocationStatus.PICKED_UP
            ):
                break
            await asyncio.sleep(0.01)
        assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.PICKED_UP
        assert len(kiosk.events(EventType.PARCEL_PICKED_UP)) == 1
    finally:
        task.cancel()


class _SlowToFailBank(FakeDoorBank):
    """A read fails as the bank was when it began (a timeout is in flight meanwhile)."""

    async def read_states(self) -> dict[int, DoorState]:
        failing = self._failure
        await asyncio.sleep(0.02)
        if failing is not None:
            raise copy.copy(failing)
        return await super().read_states()


async def test_the_monitor_reports_the_bank_healthy_again_once_it_answers(kiosk: Kiosk) -> None:
    # Every door as it was before the outage: the watch, which reports changes only, sees
    # nothing; the monitor must still notice that the bank answers (the staff screen and the
    # cloud's heartbeat show its health). Recovery lands at many points of the retry cycle,
    # some in the middle of a failing read (the monitor used to stay "not answering" then).
    bank = _SlowToFailBank(sorted(LAYOUT), FAST)
    ctx = FlowContext(kiosk.store, bank, kiosk.clock)
    monitor = DoorMonitor(ctx, interval_s=0.01, max_backoff_s=0.05)
    task = asyncio.create_task(monitor.run(await bank.read_states()))
    rng = random.Random(7)
    try:
        for _ in range(25):
            bank.fail_with(BoardTimeout("no reply from board 1"))
            await wait_for(lambda: monitor.health.board_error is not None)
            await asyncio.sleep(rng.uniform(0, 0.1))
            bank.fail_with(None)
            await wait_for(lambda: monitor.health.board_error is None, timeout_s=2)
            assert monitor.health.failed_polls == 0
    finally:
        task.cancel()


async def _commit_without_pulse(kiosk: Kiosk, door: int, allocation_id: str) -> str:
    """A crash right after the commit: the operation is recorded, the pulse never sent."""
    with kiosk.store.transaction() as db:
        pending = opening.begin_opening(
            kiosk.ctx,
            db,
            door=door,
            purpose=Purpose.PICKUP,
            actor=Actor.CUSTOMER,
            allocation_id=allocation_id,
        )
    return pending.operation.operation_id


async def test_reconcile_completes_a_pickup_whose_door_shut_while_the_kiosk_was_down(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    await pick_up(kiosk.ctx, "ABC234")  # the door opened; then the kiosk died
    fake_bank.close(1)

    report = await reconcile(kiosk.ctx)

    assert len(report.completed) == 1
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.PICKED_UP
    assert audit.pending_entries(kiosk.store.db) == []


async def test_reconcile_marks_open_a_door_pulsed_just_before_the_crash(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    operation_id = await _commit_without_pulse(kiosk, 1, "a1")
    fake_bank.open_by_hand(1)  # the pulse went out; the result was never recorded

    report = await reconcile(kiosk.ctx)

    assert report.opened == [operation_id]
    assert operations.get_operation(kiosk.store.db, operation_id).state is OperationState.OPEN
    assert kiosk.events(EventType.DOOR_TAMPERED) == []
    fake_bank.close(1)
    await kiosk.poll()
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.PICKED_UP


async def test_reconcile_abandons_an_interrupted_command_whose_door_is_shut(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    operation_id = await _commit_without_pulse(kiosk, 1, "a1")

    report = await reconcile(kiosk.ctx)

    assert report.abandoned == [operation_id]
    assert report.closed_audit_entries == 0  # abandon closes its own entries
    [unlock] = audit.entries(kiosk.store.db, command="unlock")
    assert unlock.result == "interrupted"
    # Without occupancy sensors the parcel stays deposited; the door is free for a new command.
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.DEPOSITED
    assert operations.active_operation(kiosk.store.db, 1) is None


async def test_reconcile_uses_the_compartment_sensor_when_there_is_one(kiosk: Kiosk) -> None:
    bank = FakeDoorBank(sorted(range(1, 9)), kiosk.bank.timing, occupancy_sensors=True)
    ctx = kiosk.ctx.__class__(kiosk.store, bank, kiosk.clock, kiosk.ctx.rules)
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    await _commit_without_pulse(kiosk, 1, "a1")  # compartment empty: it was taken

    report = await reconcile(ctx)

    assert len(report.completed) == 1
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.PICKED_UP


async def test_reconcile_reports_a_door_found_open_with_no_command(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    await kiosk.poll()
    fake_bank.open_by_hand(6)

    report = await reconcile(kiosk.ctx)

    assert report.tampered == [6]
    [event] = kiosk.events(EventType.DOOR_TAMPERED)
    assert event.payload["how"] == "found open at boot"
