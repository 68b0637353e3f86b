"""Couriers at the kiosk (issue 11), on the lock-board simulator over a pty: a courier signs in
with their own code, drops off under their own id, and collects in one go only what their
carrier and permissions allow; the session records every parcel; a revocation ends it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.flows import courier
from kiosk.flows.context import FlowContext
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import audit, courier_sessions, doors, people, staff_pin_guard
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import Actor, AllocationKind, EventType
from shared.clock import ManualClock
from shared.people import secret_hash
from shared.protocol import CourierChange
from shared.states import AllocationStatus

from .conftest import LAYOUT, SECRET, START, SimKiosk, wait_for

SALT = "cd" * 16


def provision(
    k: SimKiosk, courier_id: str, code: str, carrier: str, perms: list[str], *, revision: int,
    revoked: bool = False,
) -> None:  # fmt: skip
    change = CourierChange(
        revision=revision,
        courier_id=courier_id,
        name=courier_id.upper(),
        carrier_id=carrier,
        code_hash=secret_hash(code, SALT),
        salt=SALT,
        permissions=perms,  # type: ignore[arg-type]
        revoked=revoked,
    )
    people.apply_courier(k.store, change, k.clock.now())


def parcel(k: SimKiosk, ident: str, door: int, carrier: str, **kwargs: object) -> None:
    k.allocate(ident, door=door, **kwargs)  # type: ignore[arg-type]
    with k.store.transaction() as db:
        people.set_carrier(db, ident, carrier)


async def test_a_courier_collects_all_of_their_carriers_due_parcels_and_nothing_else(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    parcel(k, "exp-a", 1, "carrier-a", code="ABC234", status=AllocationStatus.EXPIRED)
    parcel(k, "ret-a", 2, "carrier-a", code="DEF234", status=AllocationStatus.DEPOSITED,
           kind=AllocationKind.RETURN)  # fmt: skip
    parcel(k, "exp-b", 3, "carrier-b", code="GHJ234", status=AllocationStatus.EXPIRED)
    provision(k, "drv-a", "11112222", "carrier-a", ["collect_expired"], revision=1)

    with pytest.raises(FlowRefused) as wrong:
        courier.sign_in(k.ctx, "99998888")
    assert wrong.value.refusal is Refusal.WRONG_COURIER_CODE
    session = courier.sign_in(k.ctx, "11112222")
    assert session.courier.courier_id == "drv-a"

    openings = await courier.collect_all(k.ctx, session)
    # Only carrier A's expired parcel: not A's return (no permission), not B's parcel.
    assert [o.door for o in openings] == [1]
    assert k.sim_door(1).is_open
    assert not k.sim_door(2).is_open
    assert not k.sim_door(3).is_open
    with pytest.raises(FlowRefused) as other:
        courier.confirm_collected(k.ctx, session, "exp-b")
    assert other.value.refusal is Refusal.NOT_PERMITTED
    courier.confirm_collected(k.ctx, session, "exp-a")
    k.sim_door(1).close()
    await wait_for(lambda: k.door(1).status.value == "available")
    assert k.status("exp-a") is AllocationStatus.COLLECTED
    assert k.status("exp-b") is AllocationStatus.EXPIRED
    assert courier_sessions.parcels(k.store.db, session.session_id) == [
        ("exp-a", "collect_opened"),
        ("exp-a", "collected"),
    ]
    # The audit names the driver as the one who took each parcel, as the drop-off does.
    [taken] = audit.entries(k.store.db, command="confirm_collected")
    assert (taken.actor, taken.detail) == (
        Actor.DRIVER,
        {"allocation_id": "exp-a", "driver_id": "drv-a"},
    )
    [unlock] = [e for e in audit.entries(k.store.db) if e.door == 1 and e.operation_id is not None]
    assert (unlock.actor, unlock.detail["driver_id"]) == (Actor.DRIVER, "drv-a")


async def test_a_courier_drops_off_under_their_own_id_and_a_revocation_ends_the_session(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    k.allocate("a1", door=4, barcode="PKG-1")
    k.allocate("a2", door=5, barcode="PKG-2")
    provision(k, "drv-d", "33334444", "carrier-a", ["drop_off"], revision=1)
    provision(k, "drv-c", "55556666", "carrier-a", ["collect_expired"], revision=2)

    collector = courier.sign_in(k.ctx, "55556666")
    with pytest.raises(FlowRefused) as denied:
        await courier.drop_off_parcel(k.ctx, collector, "PKG-1")
    assert denied.value.refusal is Refusal.NOT_PERMITTED
    assert not k.sim_door(4).is_open

    session = courier.sign_in(k.ctx, "33334444")
    result = await courier.drop_off_parcel(k.ctx, session, "PKG-1")
    assert result.door == 4
    [scan] = [e for e in audit.entries(k.store.db, command="scan") if e.result == "accepted"]
    assert scan.detail["driver_id"] == "drv-d"
    k.sim_door(4).set_occupied()
    k.sim_door(4).close()
    await wait_for(lambda: k.status("a1") is AllocationStatus.DEPOSITED)
    assert courier_sessions.parcels(k.store.db, session.session_id) == [("a1", "drop_off")]

    provision(k, "drv-d", "33334444", "carrier-a", ["drop_off"], revision=3, revoked=True)
    with pytest.raises(FlowRefused) as ended:
        await courier.drop_off_parcel(k.ctx, session, "PKG-2")
    assert ended.value.refusal is Refusal.SESSION_ENDED
    assert not k.sim_door(5).is_open
    with pytest.raises(FlowRefused):
        courier.sign_in(k.ctx, "33334444")


# Issue 11: courier codes are guarded against guessing as staff PINs are.


def sign_in_refusal(k: SimKiosk, code: str) -> FlowRefused:
    with pytest.raises(FlowRefused) as refused:
        courier.sign_in(k.ctx, code)
    return refused.value


async def test_the_fifth_wrong_courier_code_locks_courier_sign_in_and_alerts_the_operators(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    k.allocate("a1", door=1, barcode="PKG-1")
    provision(k, "drv-a", "11112222", "carrier-a", ["drop_off"], revision=1)
    for _ in range(4):
        refused = sign_in_refusal(k, "12345678")
        assert refused.refusal is Refusal.WRONG_COURIER_CODE
    assert k.events(EventType.COURIER_CODE_LOCKED) == []

    fifth = sign_in_refusal(k, "12345678")
    assert fifth.refusal is Refusal.COURIER_CODE_LOCKED
    assert "Come back in 15 minute(s)" in fifth.message
    right = sign_in_refusal(k, "11112222")  # even the right code, while locked
    assert right.refusal is Refusal.COURIER_CODE_LOCKED
    [locked] = k.events(EventType.COURIER_CODE_LOCKED)
    assert locked.payload["failures"] == 5
    # Staff sign-in keeps its own count: a courier guesser does not lock staff out.
    assert staff_pin_guard.locked_until(k.store.db) is None

    k.clock.advance(courier.LOCKOUT + timedelta(seconds=1))
    session = courier.sign_in(k.ctx, "11112222")
    result = await courier.drop_off_parcel(k.ctx, session, "PKG-1")
    assert result.door == 1
    await wait_for(lambda: k.sim_door(1).is_open)
    results = [e.result for e in audit.entries(k.store.db, command="courier_sign_in")]
    assert results == ["wrong_courier_code"] * 5 + ["courier_code_locked", "accepted"]
    assert all("11112222" not in str(e.detail) for e in audit.entries(k.store.db))


async def test_a_wrong_courier_code_never_tells_whether_a_code_exists(sim_kiosk: SimKiosk) -> None:
    k = sim_kiosk
    provision(k, "drv-a", "11112222", "carrier-a", ["drop_off"], revision=1)
    provision(k, "drv-b", "33334444", "carrier-a", ["drop_off"], revision=2)
    never = sign_in_refusal(k, "87654321")  # no courier ever had it
    courier.sign_in(k.ctx, "33334444")  # a right code: counting starts again
    provision(k, "drv-a", "11112222", "carrier-a", ["drop_off"], revision=3, revoked=True)
    revoked = sign_in_refusal(k, "11112222")  # a real courier's code, revoked
    assert (never.refusal, never.message) == (revoked.refusal, revoked.message)
    assert "4 tries left" in never.message
    wrong = [
        e for e in audit.entries(k.store.db, command="courier_sign_in") if e.result != "accepted"
    ]
    assert [e.detail for e in wrong] == [{"failures": 1}, {"failures": 1}]


def test_a_reboot_does_not_end_the_courier_code_lockout(tmp_path: Path) -> None:
    path, clock = tmp_path / "kiosk.db", ManualClock(START)
    identity, bank = KioskIdentity("loc-test", "kiosk-test"), FakeDoorBank(sorted(LAYOUT))

    def boot() -> tuple[Store, FlowContext]:
        store = Store.open(path, CodeHasher(SECRET), identity)
        return store, FlowContext(store=store, bank=bank, clock=clock)

    store, ctx = boot()
    with store.transaction() as db:
        doors.sync_layout(db, LAYOUT, START)
    change = CourierChange(
        revision=1, courier_id="drv-a", name="A", carrier_id="carrier-a",
        code_hash=secret_hash("11112222", SALT), salt=SALT, permissions=["drop_off"],
    )  # fmt: skip
    people.apply_courier(store, change, clock.now())
    for _ in range(5):
        with pytest.raises(FlowRefused):
            courier.sign_in(ctx, "12345678")
    store.close()

    store, ctx = boot()
    with pytest.raises(FlowRefused) as locked:
        courier.sign_in(ctx, "11112222")
    assert locked.value.refusal is Refusal.COURIER_CODE_LOCKED
    store.close()
