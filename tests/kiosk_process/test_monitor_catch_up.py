"""Regression test for the door monitor's catch-up (a bug the crash test found).

The sweep's catch-up records readings the store does not reflect, for a door an unlock saw open
that shut again before the watch polled it. It used the watch's last readings, which can be
older than the unlock's: a door that opened after the watch's last poll was then recorded shut
while it stood open, its pickup completed as "closed with the parcel still inside", the next poll
reported the opening as a tamper, and the parcel the customer then took out stayed ``deposited``.
"""

from __future__ import annotations

from kiosk.flows.context import FlowContext
from kiosk.flows.pickup import pick_up
from kiosk.hardware.door_bank import UnlockTiming
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.monitor import DoorMonitor
from kiosk.store import allocations, outbox
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import Store
from kiosk.store.records import EventType
from shared.clock import ManualClock
from shared.sizes import Size
from shared.states import AllocationStatus

from .helpers import IDENTITY, SECRET, seed

LAYOUT = dict.fromkeys(range(1, 5), Size.SMALL)


async def test_catch_up_never_records_a_stale_reading_over_a_fresher_one() -> None:
    timing = UnlockTiming(open_timeout_s=0.2, poll_interval_s=0.01)
    bank = FakeDoorBank(4, timing, occupancy_sensors=True)
    bank.set_occupied(1)
    store = Store.in_memory(CodeHasher(SECRET), IDENTITY)
    seed(store, LAYOUT, deposited=[("p1", 1, "ABC234")])
    ctx = FlowContext(store, bank, ManualClock())
    monitor = DoorMonitor(ctx, interval_s=0.1)
    monitor.states = await bank.read_states()  # the watch's last poll: door 1 shut, full

    result = await pick_up(ctx, "ABC234", via="scanner")  # the unlock sees it open, records it
    assert result.all_opened
    await monitor._catch_up()  # the sweep runs before the watch's next poll

    parcel = allocations.get_allocation(store.db, "p1")
    assert parcel.status is AllocationStatus.DEPOSITED
    types = [e.type for e in outbox.events(store.db)]
    assert EventType.DOOR_CLOSED not in types
    assert EventType.DOOR_TAMPERED not in types

    # The customer takes the parcel and shuts the door before the watch polls: catch-up sees it.
    bank.set_occupied(1, False)
    bank.close(1)
    await monitor._catch_up()
    assert allocations.get_allocation(store.db, "p1").status is AllocationStatus.PICKED_UP
    assert [e.type for e in outbox.events(store.db)].count(EventType.PARCEL_PICKED_UP) == 1
    store.close()
