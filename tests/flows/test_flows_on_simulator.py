"""Every kiosk flow end to end through the lock-board simulator over a real pseudo-terminal.

The kiosk side is the production stack: `SerialBoardBank` speaking 8A/80 or Kerong to the
simulated boards on a pty, and the real `DoorMonitor` polling in the background, so a parcel is
marked picked up or deposited only because the simulated door was seen shut on the wire. Each
fault the simulator can inject is exercised: a jammed door, a dead solenoid, a stuck sensor, a
board that stops answering (or loses power), corrupted reply frames.

The ``sim_kiosk`` fixture (in this directory's conftest) runs each test over both protocols.
"""

from __future__ import annotations

from datetime import timedelta

from kiosk.flows.drop_off import DoorProblem, drop_off, report_problem
from kiosk.flows.opening import OpeningOutcome, retry_opening
from kiosk.flows.pickup import pick_up
from kiosk.flows.returns import drop_off_return
from kiosk.flows.staff import confirm_collected, open_for_collection
from kiosk.store import audit
from kiosk.store.records import Actor, AllocationKind, EventType
from shared.sizes import Size
from shared.states import AllocationStatus, DoorStatus

from .conftest import SimKiosk, wait_for


async def test_pickup_opens_the_simulated_door_and_its_closing_marks_the_parcel_picked_up(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    k.allocate("a1", code="ABC234", door=6, size=Size.LARGE, status=AllocationStatus.DEPOSITED)

    result = await pick_up(k.ctx, "ABC234", via="scanner")

    assert result.all_opened
    assert k.sim_door(6).is_open
    assert k.sim_door(6).pulses == 1
    k.sim_door(6).close()
    await wait_for(lambda: k.status("a1") is AllocationStatus.PICKED_UP)
    assert k.door(6).status is DoorStatus.AVAILABLE
    assert len(k.events(EventType.PARCEL_PICKED_UP)) == 1


async def test_driver_drop_off_with_a_jammed_door_moves_to_another_door(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    k.allocate("a1", door=1, barcode="PKG-1")
    k.sim_door(1).jam()

    first = await drop_off(k.ctx, "PKG-1", driver_id="d1")
    assert first.opening.outcome is OpeningOutcome.NOT_DETECTED
    assert k.sim_door(1).pulses == 1

    second = await report_problem(
        k.ctx,
        first.opening.operation_id,
        DoorProblem.DID_NOT_OPEN,
        actor=Actor.DRIVER,
        reporter="d1",
    )
    assert second.door == 2
    assert k.sim_door(2).is_open
    k.sim_door(2).set_occupied()
    k.sim_door(2).close()
    await wait_for(lambda: k.status("a1") is AllocationStatus.DEPOSITED)
    assert k.door(1).status is DoorStatus.MAINTENANCE
    assert k.door(2).status is DoorStatus.OCCUPIED


async def test_a_dead_solenoid_is_not_detected_and_a_retry_after_repair_opens(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    k.allocate("a1", code="ABC234", door=3, status=AllocationStatus.DEPOSITED)
    k.sim_door(3).kill_solenoid()

    result = await pick_up(k.ctx, "ABC234")
    [opening] = result.openings
    assert opening.outcome is OpeningOutcome.NOT_DETECTED
    assert k.door(3).fault is not None

    k.sim_door(3).kill_solenoid(False)
    retried = await retry_opening(k.ctx, opening.operation_id, Actor.CUSTOMER)
    assert retried.opened
    assert k.sim_door(3).pulses == 2


async def test_the_pulse_goes_out_even_when_a_stuck_sensor_reads_open(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    k.allocate("a1", code="ABC234", door=5, size=Size.MEDIUM, status=AllocationStatus.DEPOSITED)
    k.sim_door(5).stick_sensor(True)
    await wait_for(lambda: k.door(5).sensor_open is True)  # the monitor sees a "forced" door

    result = await pick_up(k.ctx, "ABC234")

    assert k.sim_door(5).pulses == 1
    assert result.all_opened
    await wait_for(lambda: k.sim_door(5).is_open)  # after the spring delay


async def test_a_board_without_power_fails_the_opening_and_a_retry_works_once_it_is_back(
    sim_kiosk: SimKiosk,
) -> None:
    k = sim_kiosk
    assert k.sim is not None
    k.allocate("a1", code="ABC234", door=7, size=Size.XLARGE, status=AllocationStatus.DEPOSITED)
    for board in k.sim.boards.values():
        board.power_off()

    result = await pick_up(k.ctx, "ABC234")
    [opening] = result.openings
    assert opening.outcome is OpeningOutcome.FAILED
    assert "BoardTimeout" in (opening.detail or "")
    assert k.monitor is not None
    await wait_for(lambda: k.monitor is not None and k.monitor.health.board_error is not None)

    for board in k.sim.boards.values():
        board.power_on()
    await wait_for(lambda: k.monitor is not None and k.monitor.health.board_error is None)
    retried = await retry_opening(k.ctx, opening.operation_id, Actor.CUSTOMER)
    assert retried.opened
    k.sim_door(7).close()
    await wait_for(lambda: k.status("a1") is AllocationStatus.PICKED_UP)


async def test_corrupted_reply_frames_are_retried_and_the_door_opens(sim_kiosk: SimKiosk) -> None:
    k = sim_kiosk
    assert k.sim is not None
    k.allocate("a1", code="ABC234", door=2, status=AllocationStatus.DEPOSITED)
    for board in k.sim.boards.values():
        board.corrupt_replies(next_n=1)

    result = await pick_up(k.ctx, "ABC234")

    assert result.all_opened
    assert k.sim_door(2).pulses >= 1


async def test_return_and_staff_collection_end_to_end(sim_kiosk: SimKiosk) -> None:
    k = sim_kiosk
    k.allocate("r1", code="RTN234", kind=AllocationKind.RETURN, size=Size.MEDIUM)

    returned = await drop_off_return(k.ctx, "RTN234")
    assert returned.opened
    k.sim_door(returned.door).set_occupied()
    k.sim_door(returned.door).close()
    await wait_for(lambda: k.status("r1") is AllocationStatus.DEPOSITED)

    k.clock.advance(timedelta(hours=1))
    [collection] = await open_for_collection(k.ctx, staff_id="s1")
    assert collection.door == returned.door
    assert k.sim_door(returned.door).is_open
    confirm_collected(k.ctx, "r1", staff_id="s1")
    k.sim_door(returned.door).set_occupied(False)
    k.sim_door(returned.door).close()
    await wait_for(lambda: k.door(returned.door).sensor_open is False)
    assert k.status("r1") is AllocationStatus.COLLECTED
    assert k.door(returned.door).status is DoorStatus.AVAILABLE


async def test_a_door_forced_open_on_the_wire_is_recorded_as_tamper(sim_kiosk: SimKiosk) -> None:
    k = sim_kiosk
    k.sim_door(8).force_open()

    await wait_for(lambda: bool(k.events(EventType.DOOR_TAMPERED)))

    [event] = k.events(EventType.DOOR_TAMPERED)
    assert event.payload["door"] == 8
    assert [e.door for e in audit.entries(k.store.db, command="forced_open")] == [8]
