"""A pickup code spent on doors that were never pulsed is given back (issue 11).

The cases: a crash between the commit and the pulse (the pulse never got the bus), a frame queued
behind polls that time out, and a pulse that could not be delivered. A code whose pulse may have
reached its door stays used (a code opens its doors once). The kill -9 campaign over a real
process is in ``tests/kiosk_process/test_crash_before_pulse.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from kiosk.flows.context import FlowContext
from kiosk.flows.opening import OpeningOutcome
from kiosk.flows.pickup import pick_up
from kiosk.hardware.errors import BoardTimeout
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.hardware.protocols import BoardProtocol
from kiosk.monitor import record_reading, sweep
from kiosk.reconcile import reconcile
from kiosk.store import allocations, audit, codes, operations
from kiosk.store.records import EventType, OperationState
from shared.states import AllocationStatus

from .conftest import FAST, LAYOUT, Kiosk, SimKiosk, wait_for


class StalledBank(FakeDoorBank):
    """A fake bank whose pulse stalls where the test says: waiting for its turn on the bus, or
    after its turn came (the bytes may be on the wire). Cancelling the flow then is a crash."""

    def __init__(self, *, stall_before_turn: bool) -> None:
        super().__init__(sorted(LAYOUT), FAST)
        self.stall_before_turn = stall_before_turn
        self.stalled = asyncio.Event()

    @asynccontextmanager
    async def _pulse_turn(self) -> AsyncIterator[None]:
        if self.stall_before_turn:
            self.stalled.set()
            await asyncio.Event().wait()
        yield

    async def _pulse(self, door: int) -> None:
        self.stalled.set()
        await asyncio.Event().wait()


async def crash_during_pickup(kiosk: Kiosk, bank: StalledBank, code: str) -> None:
    """Runs a pickup with ``bank`` until it stalls, then kills it (the task is cancelled)."""
    ctx = FlowContext(kiosk.store, bank, kiosk.clock, kiosk.ctx.rules)
    task = asyncio.create_task(pick_up(ctx, code))
    await asyncio.wait_for(bank.stalled.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def code_used(kiosk: Kiosk, allocation_id: str) -> bool:
    code_id = allocations.get_allocation(kiosk.store.db, allocation_id).code_id
    assert code_id is not None
    return codes.get_code(kiosk.store.db, code_id).used_at is not None


async def test_a_crash_between_the_commit_and_the_pulse_gives_the_code_back_at_boot(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    await crash_during_pickup(kiosk, StalledBank(stall_before_turn=True), "ABC234")
    assert code_used(kiosk, "a1")  # the commit spent it

    report = await reconcile(kiosk.ctx)  # the restart; the door reads shut, no occupancy sensor

    assert len(report.abandoned) == 1
    assert not code_used(kiosk, "a1")
    [given] = kiosk.events(EventType.CODE_GIVEN_BACK)
    assert given.payload["allocation_ids"] == ["a1"]
    assert "code" not in given.payload  # a reference to the hash, never the code
    assert [e.result for e in audit.entries(kiosk.store.db, command="code_given_back")] == ["done"]
    result = await pick_up(kiosk.ctx, "ABC234")  # the customer's code works again
    assert result.all_opened
    assert fake_bank.pulses(2) == 1


async def test_a_crash_after_the_pulse_got_the_bus_keeps_the_code_used(kiosk: Kiosk) -> None:
    kiosk.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    await crash_during_pickup(kiosk, StalledBank(stall_before_turn=False), "ABC234")
    [operation] = operations.active_operations(kiosk.store.db)
    assert operation.pulse_started_at is not None

    await reconcile(kiosk.ctx)

    # The pulse may have opened the door while the kiosk was down: a code opens its doors once.
    assert code_used(kiosk, "a1")
    assert kiosk.events(EventType.CODE_GIVEN_BACK) == []
    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.DEPOSITED


async def test_a_pulse_that_could_not_be_delivered_gives_the_code_back_when_abandoned(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    fake_bank.fail_with(BoardTimeout("no reply to open board 1 lock 2"))
    result = await pick_up(kiosk.ctx, "ABC234")
    [opening] = result.openings
    assert opening.outcome is OpeningOutcome.FAILED
    assert code_used(kiosk, "a1")

    kiosk.clock.advance(kiosk.ctx.rules.abandon_after)
    sweep(kiosk.ctx)

    assert not code_used(kiosk, "a1")
    assert len(kiosk.events(EventType.CODE_GIVEN_BACK)) == 1
    fake_bank.fail_with(None)
    assert (await pick_up(kiosk.ctx, "ABC234")).all_opened


async def test_a_pulse_delivered_but_not_seen_open_keeps_the_code_used(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    kiosk.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    fake_bank.jam(2)
    [opening] = (await pick_up(kiosk.ctx, "ABC234")).openings
    assert opening.outcome is OpeningOutcome.NOT_DETECTED
    kiosk.clock.advance(kiosk.ctx.rules.abandon_after + timedelta(seconds=1))
    sweep(kiosk.ctx)
    assert code_used(kiosk, "a1")
    assert kiosk.events(EventType.CODE_GIVEN_BACK) == []


async def test_a_pulse_queued_behind_timed_out_polls_gives_the_code_back(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    assert k.sim is not None
    assert k.monitor is not None
    k.allocate("a1", code="ABC234", door=7, status=AllocationStatus.DEPOSITED)
    k.sim_door(7).set_occupied(True)  # the parcel is in (Kerong boards report it)
    if k.sim.protocol is BoardProtocol.KERONG:
        await wait_for(lambda: k.door(7).sensor_occupied is True)
    for board in k.sim.boards.values():
        board.power_off()
    poll = asyncio.create_task(k.bank.read_states())
    await asyncio.sleep(0)  # the poll has the bus now, and will time out

    # Typed before the monitor has noticed: the code is spent, and the open frame queues
    # behind polls that time out, then times out itself.
    [opening] = (await pick_up(k.ctx, "ABC234")).openings
    with pytest.raises(BoardTimeout):
        await poll
    assert opening.outcome is OpeningOutcome.FAILED
    assert code_used(k, "a1")
    assert k.sim_door(7).pulses == 0

    k.clock.advance(k.ctx.rules.abandon_after)
    sweep(k.ctx)

    [operation] = operations.operations_for_allocation(k.store.db, "a1")
    assert operation.state is OperationState.ABANDONED
    assert not code_used(k, "a1")
    assert len(k.events(EventType.CODE_GIVEN_BACK)) == 1
    for board in k.sim.boards.values():
        board.power_on()
    await wait_for(lambda: k.monitor is not None and k.monitor.health.board_error is None)
    assert (await pick_up(k.ctx, "ABC234")).all_opened


class DeadLockBank(FakeDoorBank):
    """A fake bank whose board cannot deliver pulses to one door (its channel is dead)."""

    def __init__(self, dead: int) -> None:
        super().__init__(sorted(LAYOUT), FAST)
        self.dead = dead

    async def _pulse(self, door: int) -> None:
        if door == self.dead:
            raise BoardTimeout(f"no reply to open door {door}")
        await super()._pulse(door)


async def test_a_two_parcel_code_is_given_back_for_the_door_never_pulsed_once_the_other_shut(
    kiosk: Kiosk,
) -> None:
    bank = DeadLockBank(dead=2)
    ctx = FlowContext(kiosk.store, bank, kiosk.clock, kiosk.ctx.rules)
    kiosk.allocate("a1", code="ABC234", door=1, status=AllocationStatus.DEPOSITED)
    kiosk.allocate("a2", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    result = await pick_up(ctx, "ABC234")
    assert [o.outcome for o in result.openings] == [OpeningOutcome.OPENED, OpeningOutcome.FAILED]
    kiosk.clock.advance(kiosk.ctx.rules.abandon_after)
    sweep(ctx)  # door 2 given up while door 1 is still open: nothing given back yet
    assert code_used(kiosk, "a2")

    bank.close(1)  # the customer took parcel 1 and shut its door
    for door, state in (await bank.read_states()).items():
        record_reading(ctx, door, state)

    assert allocations.get_allocation(kiosk.store.db, "a1").status is AllocationStatus.PICKED_UP
    assert not code_used(kiosk, "a2")
    [given] = kiosk.events(EventType.CODE_GIVEN_BACK)
    assert given.payload["allocation_ids"] == ["a2"]
    bank.dead = 0
    again = await pick_up(ctx, "ABC234")
    assert again.doors == (2,)  # only the parcel still waiting; door 1's is gone
