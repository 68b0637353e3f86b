"""Fixtures for the kiosk flow tests: a kiosk with a store, a door bank and a clock it controls.

`Kiosk` bundles a `FlowContext` over an in-memory store and `FakeDoorBank` (or any bank), with the
hands tests need: seed parcels through the same `changes` API sync uses, and `poll` the doors as
the door monitor does (one deterministic poll instead of a background task).

`sim_kiosk` is the same kiosk over the production stack instead: `SerialBoardBank` speaking 8A/80
or Kerong (the fixture runs each test over both) to the lock-board simulator on a real
pseudo-terminal, with the real `DoorMonitor` polling in the background. The flows' simulator
tests and the touchscreen UI's simulator tests share it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from hardware_sim.doors import SimulatedDoor
from hardware_sim.lock_board import LockBoardSimulator
from kiosk.flows.context import FlowContext, FlowRules
from kiosk.hardware import DoorMap
from kiosk.hardware.door_bank import DoorBank, UnlockTiming
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.hardware.protocols import BoardProtocol
from kiosk.hardware.serial_board import SerialBankConfig, SerialBoardBank
from kiosk.monitor import DoorMonitor, record_reading
from kiosk.reconcile import reconcile
from kiosk.store import allocations, changes, doors, outbox
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import AllocationKind, Door, EventType, OutboxEvent
from shared.clock import ManualClock
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus
from tests.event_samples import assert_all_valid

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAST = UnlockTiming(open_timeout_s=0.05, poll_interval_s=0.01)
# Doors 1-3 small, 4-5 medium, 6 large, 7 xlarge, 8 small.
LAYOUT = {
    1: Size.SMALL,
    2: Size.SMALL,
    3: Size.SMALL,
    4: Size.MEDIUM,
    5: Size.MEDIUM,
    6: Size.LARGE,
    7: Size.XLARGE,
    8: Size.SMALL,
}
SECRET = "kiosk-code-secret-for-tests"


@dataclass
class Kiosk:
    ctx: FlowContext
    clock: ManualClock
    revision: int = 0

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def bank(self) -> DoorBank:
        return self.ctx.bank

    def allocate(
        self,
        allocation_id: str,
        *,
        code: str | None = None,
        door: int | None = None,
        size: Size = Size.SMALL,
        status: AllocationStatus = AllocationStatus.RESERVED,
        kind: AllocationKind = AllocationKind.DELIVERY,
        barcode: str | None = None,
        reservation_hours: float = 24,
        pickup_expires_at: datetime | None = None,
    ) -> None:
        """Applies an allocation as the cloud would send it (next revision)."""
        self.revision += 1
        result = changes.apply_allocation(
            self.store,
            changes.AllocationUpdate(
                allocation_id=allocation_id,
                kind=kind,
                barcode=barcode or f"PKG-{allocation_id}",
                size=size,
                status=status,
                proposed_door=door,
                code=None if code is None else PickupCode.parse(code),
                reservation_expires_at=self.clock.now() + timedelta(hours=reservation_hours),
                pickup_expires_at=pickup_expires_at,
                order_id="ORDER-1" if kind is AllocationKind.RETURN else None,
            ),
            self.revision,
            self.clock.now(),
        )
        assert result.outcome is changes.ApplyOutcome.APPLIED, result

    async def poll(self) -> None:
        """One poll of every door, recorded as the door monitor records it."""
        for door, state in (await self.bank.read_states()).items():
            record_reading(self.ctx, door, state)

    def door(self, number: int) -> Door:
        return doors.get_door(self.store.db, number)

    def events(self, kind: EventType | None = None) -> list[OutboxEvent]:
        return [e for e in outbox.events(self.store.db) if kind is None or e.type is kind]


def make_store() -> Store:
    store = Store.in_memory(CodeHasher(SECRET), KioskIdentity("loc-test", "kiosk-test"))
    with store.transaction() as db:
        doors.sync_layout(db, LAYOUT, START)
    return store


@pytest.fixture
def fake_bank() -> FakeDoorBank:
    return FakeDoorBank(sorted(LAYOUT), FAST)


@pytest.fixture
def kiosk(fake_bank: FakeDoorBank) -> Iterator[Kiosk]:
    clock = ManualClock(START)
    store = make_store()
    ctx = FlowContext(store=store, bank=fake_bank, clock=clock, rules=FlowRules())
    yield Kiosk(ctx, clock)
    # Whatever the test made the flows write, the cloud would accept.
    assert_all_valid(outbox.events(store.db))
    store.close()


# Two boards of four locks each, at addresses each protocol allows.
BOARDS = {BoardProtocol.EIGHT_A: (1, 2), BoardProtocol.KERONG: (0, 1)}
SIM_TIMING = UnlockTiming(open_timeout_s=0.5, poll_interval_s=0.02)


@dataclass
class SimKiosk(Kiosk):
    """A `Kiosk` over the simulated lock boards; `sim_door` is a door's physical side."""

    sim: LockBoardSimulator | None = None
    door_map: DoorMap | None = None
    monitor: DoorMonitor | None = None

    def sim_door(self, door: int) -> SimulatedDoor:
        assert self.door_map is not None
        assert self.sim is not None
        where = self.door_map.address(door)
        return self.sim.door(where.board, where.lock)

    def status(self, allocation_id: str) -> AllocationStatus:
        return allocations.get_allocation(self.store.db, allocation_id).status


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls ``condition`` (yielding to the loop: the monitor, the UI) until true.

    Raises:
        AssertionError: when it is still false after ``timeout_s``.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture(params=[BoardProtocol.EIGHT_A, BoardProtocol.KERONG], ids=["8a80", "kerong"])
async def sim_kiosk(request: pytest.FixtureRequest) -> AsyncIterator[SimKiosk]:
    protocol: BoardProtocol = request.param
    first, second = BOARDS[protocol]
    sim = LockBoardSimulator(protocol, {first: 4, second: 4}, spring_delay_s=0.02)
    sim.start()
    door_map = DoorMap.sequential([(first, 4), (second, 4)])
    bank = SerialBoardBank(
        SerialBankConfig(
            port=sim.path,
            protocol=protocol,
            door_map=door_map,
            request_timeout_s=0.1,
            retries=2,
            unlock_listen_s=0.01,
        ),
        SIM_TIMING,
    )
    clock = ManualClock(START)
    store = make_store()
    kiosk = SimKiosk(FlowContext(store, bank, clock), clock, sim=sim, door_map=door_map)
    await reconcile(kiosk.ctx)
    kiosk.monitor = DoorMonitor(kiosk.ctx, interval_s=0.05, max_backoff_s=0.2)
    task = asyncio.create_task(kiosk.monitor.run(await bank.read_states()))
    try:
        yield kiosk
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await bank.aclose()
        sim.stop()
        events = outbox.events(store.db)
        store.close()
    assert_all_valid(events)
