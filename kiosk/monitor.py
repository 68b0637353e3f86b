"""The door monitor: polls every door, records what changed, and raises timed alerts.

It runs for the daemon's whole life, beside the flows, on the same event loop and store:

- `DoorMonitor.run` watches the door bank (every ``interval_s``, at most 500 ms) and gives each
  change to `record_reading`, which stores it and records its meaning (an operation's door seen
  open or shut, a tamper, a parcel picked up or deposited: see `kiosk.flows.completion`).
- `sweep`, about once a second, raises a ``door_left_open`` alert for a door open longer than
  ``left_open_after`` (once per opening), and gives up operations whose door never opened after
  ``abandon_after`` (the person walked away from "door did not open").

A board that stops answering, or a port that is lost (an unplugged adapter, board power), ends the
watch; the monitor notes it in the kiosk's `BankHealth` (which the flows, the screens and the
heartbeat read), records a ``door_bank_unavailable`` event for the cloud's operators once the
bank counts as down (a second failed poll in a row confirms the first), waits with
jittered exponential backoff and watches again from the last readings it has, so a door that
changed meanwhile is still seen as a change. When the bank answers again it records
``door_bank_restored``. A bank absent at boot is the same outage: the daemon starts the monitor
without a baseline, and the monitor runs boot reconciliation once the bank first answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from kiosk.bank_health import DOWN_AFTER_FAILED_POLLS, BankHealth
from kiosk.flows import completion
from kiosk.flows.context import FlowContext
from kiosk.hardware.door_bank import MAX_POLL_INTERVAL_S, DoorState
from kiosk.hardware.errors import LockBoardError
from kiosk.reconcile import Reconciliation, reconcile
from kiosk.store import audit, doors, operations, outbox
from kiosk.store.records import Actor, OperationState
from kiosk.sync import deferred
from shared.backoff import backoff_delay
from shared.events import DoorBankRestored, DoorBankUnavailable, DoorLeftOpen

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0

MonitorHealth = BankHealth
"""The monitor's view of the hardware: the kiosk's `BankHealth` (the older name)."""


def record_reading(ctx: FlowContext, door: int, state: DoorState) -> bool:
    """Stores one door's reading and records what the change means, in one transaction.

    Returns:
        Whether the reading differed from the stored one.
    """
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        before = doors.get_door(db, door)
        if not doors.record_sensors(db, door, state.is_open, state.occupied, now):
            return False
        if state.is_open and before.sensor_open is not True:
            completion.door_seen_open(ctx, db, door, now, "monitor")
        elif not state.is_open and before.sensor_open is True:
            if completion.door_seen_shut(ctx, db, door, state.occupied, now) is not None:
                # Its operation settled: cloud changes that waited for it apply now.
                deferred.retry(ctx.store, now)
        elif not state.is_open and state.occupied != before.sensor_occupied:
            # The compartment changed behind a door never seen open: the same rule as at boot.
            active = operations.active_operation(db, door)
            if active is not None and completion.settle_unseen(
                ctx, db, active, state.occupied, now, "occupancy"
            ):
                deferred.retry(ctx.store, now)
        return True


def sweep(ctx: FlowContext) -> None:
    """Raises left-open alerts and abandons operations whose door never opened."""
    rules = ctx.rules
    with ctx.store.transaction() as db:
        now = ctx.clock.now()
        for door in doors.list_doors(db):
            if (
                door.sensor_open
                and door.left_open_alerted_at is None
                and door.sensor_changed_at is not None
                and now - door.sensor_changed_at >= rules.left_open_after
            ):
                doors.mark_left_open_alerted(db, door.number, now)
                log.warning(
                    "door %d left open since %s", door.number, door.sensor_changed_at.isoformat()
                )
                active = operations.active_operation(db, door.number)
                event = DoorLeftOpen(
                    door=door.number,
                    open_since=door.sensor_changed_at,
                    operation_id=None if active is None else active.operation_id,
                )
                outbox.append_event(db, event, now)
                audit.record_entry(
                    db, now, Actor.KIOSK, "left_open_alert", "raised", door=door.number
                )
        for operation in operations.active_operations(db):
            if (
                operation.state in (OperationState.NOT_DETECTED, OperationState.FAILED)
                and now - operation.created_at >= rules.abandon_after
            ):
                door = doors.get_door(db, operation.door)
                if door.sensor_open is False and completion.settle_unseen(
                    ctx, db, operation, door.sensor_occupied, now, "occupancy"
                ):
                    continue
                completion.abandon(db, operation, "door never opened", now)
        # The net under the closings' own retries: whatever else ended a blocker (a problem
        # report, a flow's failure), kept cloud changes never wait longer than a sweep.
        deferred.retry(ctx.store, now)


class DoorMonitor:
    """Watches the door bank for the daemon, until cancelled.

    Args:
        ctx: The kiosk.
        interval_s: Seconds between polls, at most 0.5.
        max_backoff_s: The longest wait before watching again after a failed poll.
    """

    def __init__(
        self, ctx: FlowContext, *, interval_s: float = 0.25, max_backoff_s: float = 10.0
    ) -> None:
        if not 0 < interval_s <= MAX_POLL_INTERVAL_S:
            raise ValueError(f"interval_s must be in (0, {MAX_POLL_INTERVAL_S}]")
        self.ctx = ctx
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.health = ctx.bank_health
        self.states: dict[int, DoorState] = {}
        self.reconciliation: Reconciliation | None = None

    async def run(self, baseline: Mapping[int, DoorState] | None) -> None:
        """Watches and sweeps until cancelled.

        Args:
            baseline: What boot reconciliation read; None when it could not run (the bank did
                not answer at boot): the monitor then runs it as soon as the bank answers, and
                until then the bank counts as unavailable.
        """
        if baseline is None:
            self.health.reconciled = False
        else:
            self.states = dict(baseline)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch())
            group.create_task(self._sweep())

    async def _reconcile_when_answering(self) -> None:
        """Runs boot reconciliation once the bank answers, retrying with backoff until then."""
        while True:
            try:
                report = await reconcile(self.ctx)
            except LockBoardError as error:
                self._failed(error)
                await asyncio.sleep(self._backoff())
                continue
            self.reconciliation = report
            self.states = dict(report.states)
            self.health.reconciled = True
            self._healthy()
            log.info(
                "the door bank answers: boot reconciliation ran late (%d completed, %d "
                "abandoned, %d door(s) found open without a command)",
                len(report.completed),
                len(report.abandoned),
                len(report.tampered),
            )
            return

    async def _watch(self) -> None:
        if not self.health.reconciled:
            await self._reconcile_when_answering()
        while True:
            try:
                async for change in self.ctx.bank.watch(self.interval_s, baseline=self.states):
                    self._healthy()
                    self.states[change.door] = change.after
                    record_reading(self.ctx, change.door, change.after)
                # watch only ends by raising; a clean end would be a backend bug.
                raise LockBoardError("the door bank's watch ended")  # pragma: no cover
            except LockBoardError as error:
                self._failed(error)
                # Until a full read works: the watch reports changes only, so a bank that
                # answers again with every door as it was would otherwise stay "not answering".
                while True:
                    await asyncio.sleep(self._backoff())
                    try:
                        await self._resync()
                        break
                    except LockBoardError as again:
                        self._failed(again)

    def _failed(self, error: LockBoardError) -> None:
        self.health.failed_polls += 1
        if self.health.board_error is None:
            log.warning("door bank stopped answering: %s", error)
        self.health.board_error = f"{type(error).__name__}: {error}"
        if self.health.failed_polls == DOWN_AFTER_FAILED_POLLS:
            log.warning("door bank is down: no door opens until it answers (%s)", error)
            with self.ctx.store.transaction() as db:
                now = self.ctx.clock.now()
                outbox.append_event(db, DoorBankUnavailable(error=self.health.board_error), now)
                audit.record_entry(
                    db,
                    now,
                    Actor.KIOSK,
                    "door_bank",
                    "unavailable",
                    detail={"error": self.health.board_error},
                )

    async def _resync(self) -> None:
        """Reads every door once after an outage and records what changed meanwhile.

        Raises:
            LockBoardError: the bank still does not answer.
        """
        current = await self.ctx.bank.read_states()
        self._healthy()
        for door, state in current.items():
            if self.states.get(door) != state:
                record_reading(self.ctx, door, state)
        self.states = current

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            if not self.health.reconciled:
                continue  # nothing is settled before boot reconciliation has run
            await self._catch_up()
            sweep(self.ctx)

    async def _catch_up(self) -> None:
        """Records fresh readings the store does not reflect.

        An unlock records the door open when its own polling sees it; if the door shut again
        before the monitor's next poll, the watch saw no change, yet the store says open.

        The doors are read afresh here: the watch's last readings may predate the unlock's (the
        door opened after the watch last polled it), and recording those would shut a door that
        is open, completing its operation early and then reporting the opening as a tamper. A
        door whose stored reading changed while this read was under way is left for the next
        sweep, since the store may then hold the fresher reading.
        """
        before = self._stored_readings()
        try:
            current = await self.ctx.bank.read_states()
        except LockBoardError:
            return  # the watch notes the outage and resyncs
        for door, stored in self._stored_readings().items():
            state = current.get(door)
            if (
                state is None
                or stored != before.get(door)
                or stored[0] is None
                or stored[0] == state.is_open
            ):
                continue
            record_reading(self.ctx, door, state)

    def _stored_readings(self) -> dict[int, tuple[bool | None, bool | None]]:
        return {
            door.number: (door.sensor_open, door.sensor_occupied)
            for door in doors.list_doors(self.ctx.store.db)
        }

    def _healthy(self) -> None:
        if self.health.board_error is not None:
            log.info("door bank answers again after %d failed polls", self.health.failed_polls)
        if self.health.down:
            failed = self.health.failed_polls
            with self.ctx.store.transaction() as db:
                now = self.ctx.clock.now()
                outbox.append_event(db, DoorBankRestored(failed_polls=failed), now)
                audit.record_entry(
                    db, now, Actor.KIOSK, "door_bank", "restored", detail={"failed_polls": failed}
                )
        self.health.board_error = None
        self.health.failed_polls = 0
        self.health.last_poll_ok_at = self.ctx.clock.now()

    def _backoff(self) -> float:
        # Equal jitter (half the ceiling at least): a full-jitter wait near 0 would poll a
        # board that does not answer in a tight loop.
        return backoff_delay(
            self.health.failed_polls, first=0.5, longest=self.max_backoff_s, floor=0.5
        )
