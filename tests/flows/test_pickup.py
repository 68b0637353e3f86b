"""Customer pickup by code, on an in-memory store and the fake door bank."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kiosk.flows.opening import OpeningOutcome, retry_opening
from kiosk.flows.pickup import pick_up
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.hardware.errors import BoardTimeout
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import allocations, audit, codes, operations
from kiosk.store.records import Actor, AllocationKind, EventType, OperationState
from shared.codes import PickupCode
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus

from .conftest import Kiosk

CODE = "ABC234"


def deposited(kiosk: Kiosk, allocation_id: str, door: int, code: str = CODE, **kw: object) -> None:
    kiosk.allocate(
        allocation_id,
        code=code,
        door=door,
        status=AllocationStatus.DEPOSITED,
        pickup_expires_at=kiosk.clock.now() + timedelta(days=3),
        **kw,  # type: ignore[arg-type]
    )


async def test_a_valid_code_opens_its_door_and_closing_it_marks_the_parcel_picked_up(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=2)

    result = await pick_up(kiosk.ctx, "abc-234")

    assert result.doors == (2,)
    assert result.all_opened
    assert fake_bank.is_open(2)
    parcel = allocations.get_allocation(kiosk.store.db, "a1")
    assert parcel.status is AllocationStatus.DEPOSITED  # not yet: the door is still open

    fake_bank.close(2)
    await kiosk.poll()

    parcel = allocations.get_allocation(kiosk.store.db, "a1")
    assert parcel.status is AllocationStatus.PICKED_UP
    assert kiosk.door(2).status is DoorStatus.AVAILABLE
    assert [e.payload["allocation_id"] for e in kiosk.events(EventType.PARCEL_PICKED_UP)] == ["a1"]


async def test_one_code_opens_every_parcel_of_the_customer(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=1)
    deposited(kiosk, "a2", door=4)

    result = await pick_up(kiosk.ctx, CODE)

    assert result.doors == (1, 4)
    assert fake_bank.is_open(1)
    assert fake_bank.is_open(4)
    [used] = kiosk.events(EventType.CODE_USED)
    assert sorted(used.payload["allocation_ids"]) == ["a1", "a2"]
    assert CODE not in str(used.payload)


async def test_a_code_works_only_once(kiosk: Kiosk, fake_bank: FakeDoorBank) -> None:
    deposited(kiosk, "a1", door=1)
    await pick_up(kiosk.ctx, CODE)
    fake_bank.close(1)
    await kiosk.poll()

    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, CODE)

    assert refused.value.refusal is Refusal.CODE_USED
    assert fake_bank.pulses(1) == 1


async def test_the_code_is_spent_before_the_door_is_pulsed(kiosk: Kiosk) -> None:
    """Invariant 3: the pulse happens after the commit of the code, operation and event."""
    seen: dict[str, object] = {}

    class CheckingBank(FakeDoorBank):
        async def _pulse(self, door: int) -> None:
            db = kiosk.store.db
            seen["in_transaction"] = db.conn.in_transaction
            seen["operation"] = operations.active_operation(db, door)
            seen["code_used"] = [e.type for e in kiosk.events(EventType.CODE_USED)]
            await super()._pulse(door)

    bank = CheckingBank(8, kiosk.bank.timing)
    ctx = kiosk.ctx.__class__(kiosk.store, bank, kiosk.clock, kiosk.ctx.rules)
    deposited(kiosk, "a1", door=3)

    await pick_up(ctx, CODE)

    assert seen["in_transaction"] is False
    operation = seen["operation"]
    assert isinstance(operation, operations.DoorOperation)
    assert operation.state is OperationState.UNLOCKING
    assert seen["code_used"] == [EventType.CODE_USED]


async def test_an_unknown_code_is_refused_and_opens_nothing(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=1)

    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, "ZZZ999")

    assert refused.value.refusal is Refusal.UNKNOWN_CODE
    assert "4 tries left" in refused.value.message
    assert fake_bank.pulses(1) == 0
    [entry] = audit.entries(kiosk.store.db, command="code_entry")
    assert entry.result == "unknown_code"
    assert entry.actor is Actor.CUSTOMER


async def test_a_malformed_code_is_refused_with_a_hint_and_not_counted(kiosk: Kiosk) -> None:
    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, "ABO1")

    assert refused.value.refusal is Refusal.INVALID_CODE
    assert "6 characters" in refused.value.message
    assert kiosk.events(EventType.KEYPAD_LOCKED) == []


async def test_an_expired_code_is_refused(kiosk: Kiosk, fake_bank: FakeDoorBank) -> None:
    deposited(kiosk, "a1", door=1)
    kiosk.clock.advance(timedelta(days=3, seconds=1))

    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, CODE)

    assert refused.value.refusal is Refusal.CODE_EXPIRED
    assert fake_bank.pulses(1) == 0
    # Refused, not spent: the code row is still live.
    code = codes.find_code(kiosk.store.db, kiosk.store.hasher.hash(_code(CODE)))
    assert code is not None
    assert code.used_at is None


async def test_a_code_for_a_parcel_not_yet_deposited_says_so(kiosk: Kiosk) -> None:
    kiosk.allocate("a1", code=CODE, door=1)

    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, CODE)

    assert refused.value.refusal is Refusal.NOT_YET_DEPOSITED


async def test_a_return_code_at_the_pickup_screen_points_to_the_return_screen(
    kiosk: Kiosk,
) -> None:
    kiosk.allocate("r1", code=CODE, kind=AllocationKind.RETURN)

    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, CODE)

    assert refused.value.refusal is Refusal.WRONG_KIND_OF_CODE
    assert "Return a parcel" in refused.value.message


async def test_five_wrong_codes_in_a_minute_lock_the_keypad_for_a_minute(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=1)
    for attempt in range(4):
        with pytest.raises(FlowRefused) as refused:
            await pick_up(kiosk.ctx, f"ZZZ99{attempt + 2}")
        assert refused.value.refusal is Refusal.UNKNOWN_CODE
        kiosk.clock.advance(5)

    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, "ZZZ997")
    assert refused.value.refusal is Refusal.KEYPAD_LOCKED

    # Even the right code is refused while locked, with the time left.
    kiosk.clock.advance(30)
    with pytest.raises(FlowRefused) as refused:
        await pick_up(kiosk.ctx, CODE)
    assert refused.value.refusal is Refusal.KEYPAD_LOCKED
    assert refused.value.retry_after == timedelta(seconds=30)
    assert "30 more seconds" in refused.value.message
    assert fake_bank.pulses(1) == 0

    kiosk.clock.advance(30)
    result = await pick_up(kiosk.ctx, CODE)
    assert result.doors == (1,)
    assert len(kiosk.events(EventType.KEYPAD_LOCKED)) == 1
    results = [e.result for e in audit.entries(kiosk.store.db, command="code_entry")]
    assert results == ["unknown_code"] * 5 + ["keypad_locked", "accepted"]


async def test_wrong_codes_spread_over_more_than_a_minute_do_not_lock(kiosk: Kiosk) -> None:
    for attempt in range(6):
        with pytest.raises(FlowRefused) as refused:
            await pick_up(kiosk.ctx, f"ZZZ99{attempt + 2}")
        assert refused.value.refusal is Refusal.UNKNOWN_CODE
        kiosk.clock.advance(20)


async def test_a_jammed_door_is_open_not_detected_and_can_be_retried(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=5, size=Size.MEDIUM)
    fake_bank.jam(5)

    result = await pick_up(kiosk.ctx, CODE)

    [opening] = result.openings
    assert opening.outcome is OpeningOutcome.NOT_DETECTED
    assert kiosk.door(5).fault is not None
    assert [e.type for e in kiosk.events()][-1] is EventType.DOOR_OPEN_NOT_DETECTED

    fake_bank.jam(5, False)
    retried = await retry_opening(kiosk.ctx, opening.operation_id, Actor.CUSTOMER)

    assert retried.outcome is OpeningOutcome.OPENED
    assert fake_bank.pulses(5) == 2
    assert kiosk.door(5).fault is None
    unlocks = audit.entries(kiosk.store.db, command="unlock")
    assert [u.result for u in unlocks] == ["not_detected", "opened"]


async def test_a_silent_board_fails_the_opening_without_losing_the_code_record(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=1)
    fake_bank.fail_with(BoardTimeout("no answer"))

    result = await pick_up(kiosk.ctx, CODE)

    assert result.openings[0].outcome is OpeningOutcome.FAILED
    assert "BoardTimeout" in (result.openings[0].detail or "")
    fake_bank.fail_with(None)
    retried = await retry_opening(kiosk.ctx, result.openings[0].operation_id, Actor.CUSTOMER)
    assert retried.opened


async def test_the_pulse_is_sent_even_when_the_sensor_already_reads_open(
    kiosk: Kiosk, fake_bank: FakeDoorBank
) -> None:
    deposited(kiosk, "a1", door=1)
    fake_bank.stick_sensor(1, True)

    result = await pick_up(kiosk.ctx, CODE)

    assert fake_bank.pulses(1) == 1
    assert result.all_opened


def _code(text: str) -> PickupCode:
    return PickupCode.parse(text)
