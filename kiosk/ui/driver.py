"""Driver drop-off: scan (or type) each parcel's barcode, put it in the door shown, repeat.

The driver stays here from one parcel to the next (multi-drop); "Finish" shows what went in,
as the store has it. A door that did not open, or is not empty, is reported (`report_problem`):
that door goes out of service and another one opens for the same parcel. The screen watches the
current door's operation: once the door has shut (the operation is over) the problem buttons go,
so a late "Door not empty" cannot undo a real deposit.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Static

from kiosk.flows import courier, drop_off
from kiosk.flows.courier import CourierSession
from kiosk.flows.drop_off import DoorProblem, DropOffResult
from kiosk.flows.refusals import FlowRefused
from kiosk.store import allocations, operations
from kiosk.store.records import Actor
from kiosk.ui.base import KioskScreen
from kiosk.ui.collection import CollectionScreen
from kiosk.ui.notice import NoticeScreen
from shared.people import CourierPermission
from shared.states import AllocationStatus

READY_TEXT = "Scan the parcel's barcode (or type it and touch Open door)."


class DriverScreen(KioskScreen):
    TITLE_TEXT = "Drop off (driver)"

    def __init__(self, session: CourierSession | None = None) -> None:
        super().__init__()
        # A signed-in courier (issue 11): drop-offs are theirs, and "Collect" opens their
        # carrier's parcels due for collection. None: a kiosk without couriers provisioned.
        self.session = session
        self.current: DropOffResult | None = None
        self.deposits: dict[str, DropOffResult] = {}
        self.busy = False
        self.door_shut = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="scan-row"):
            yield Input(placeholder="Parcel barcode", id="barcode")
            yield Button("Open door", id="open", variant="primary")
        yield Static(READY_TEXT, id="drop-status", classes="message")
        with Horizontal(classes="actions", id="problems"):
            yield Button("Door did not open", id="did-not-open", variant="warning")
            yield Button("Door not empty", id="not-empty", variant="warning")
        with Horizontal(classes="actions"):
            yield Static("", id="drop-count", classes="counter")
            if self.session is not None and (
                self.session.courier.may(CourierPermission.COLLECT_EXPIRED)
                or self.session.courier.may(CourierPermission.COLLECT_RETURNS)
            ):
                yield Button("Collect", id="collect")
            yield Button("Finish", id="finish", variant="success")

    def on_mount(self) -> None:
        self._refresh()
        self.query_one("#barcode", Input).focus()
        self.set_interval(self.services.refresh_s, self.check_closed)

    def check_closed(self) -> None:
        """Asks the store whether the current door's operation is over (the door shut)."""
        current = self.current
        if current is None or self.door_shut or self.busy:
            return
        with self.services.ctx.store.transaction() as db:
            operation = operations.get_operation(db, current.opening.operation_id)
        if not operation.state.is_active:
            self.door_shut = True
            self._refresh()

    def _deposited(self, allocation_id: str) -> bool:
        with self.services.ctx.store.transaction() as db:
            parcel = allocations.find_allocation(db, allocation_id)
        return parcel is not None and parcel.status is AllocationStatus.DEPOSITED

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.scan(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "open":
            self.scan(self.query_one("#barcode", Input).value)
        elif button == "did-not-open":
            self._start(self.report(DoorProblem.DID_NOT_OPEN))
        elif button == "not-empty":
            self._start(self.report(DoorProblem.NOT_EMPTY))
        elif button == "finish":
            self.finish()
        elif button == "collect" and self.session is not None:
            self.kiosk.push_screen(CollectionScreen(self.session))

    def on_unmount(self) -> None:
        if self.session is not None:
            courier.sign_out(self.services.ctx, self.session)

    @property
    def driver_id(self) -> str:
        """Who the audit names: the signed-in courier, else the touchscreen's driver id."""
        return self.services.driver_id if self.session is None else self.session.courier.courier_id

    def scan(self, barcode: str) -> None:
        """Starts the drop-off of ``barcode`` (typed, or read by the scanner)."""
        barcode = barcode.strip()
        if barcode:
            self.query_one("#barcode", Input).value = ""
            self._start(self.drop(barcode))

    def _start(self, work: object) -> None:
        if self.busy:
            return
        self.busy = True
        self.run_worker(work, group="flow")  # type: ignore[arg-type]

    async def drop(self, barcode: str) -> None:
        try:
            ctx, driver, session = self.services.ctx, self.driver_id, self.session
            if session is not None:
                outcome = await self.kiosk.attempt(
                    lambda: courier.drop_off_parcel(ctx, session, barcode)
                )
            else:
                outcome = await self.kiosk.attempt(
                    lambda: drop_off.drop_off(ctx, barcode, driver_id=driver)
                )
            self._took(outcome)
        finally:
            self.busy = False

    async def report(self, problem: DoorProblem) -> None:
        try:
            current = self.current
            if current is None or self.door_shut:
                return  # the door has shut: nothing left to report about it
            ctx, driver = self.services.ctx, self.driver_id
            outcome = await self.kiosk.attempt(
                lambda: drop_off.report_problem(
                    ctx, current.opening.operation_id, problem, actor=Actor.DRIVER, reporter=driver
                )
            )
            if isinstance(outcome, FlowRefused) and not self._deposited(current.allocation_id):
                # The reported door is out of service whatever came next: the parcel has no door.
                self.deposits.pop(current.allocation_id, None)
                self.current = None
            self._took(outcome)
        finally:
            self.busy = False

    def _took(self, outcome: DropOffResult | FlowRefused | None) -> None:
        if isinstance(outcome, FlowRefused):
            self._refresh(outcome.message)
        elif isinstance(outcome, DropOffResult):
            self.current = outcome
            self.door_shut = False
            self.deposits[outcome.allocation_id] = outcome
            self._refresh()
        self.query_one("#barcode", Input).focus()

    def _refresh(self, refusal: str | None = None) -> None:
        current = self.current
        if refusal is not None:
            text = refusal
        elif current is None:
            text = READY_TEXT
        else:
            locker = self.services.locker(current.door)
            size = current.door_size.value
            if self.door_shut:
                done = self._deposited(current.allocation_id)
                text = f"{locker} ({size}) is shut: " + (
                    "the parcel is in." if done else "nothing was deposited."
                )
            elif current.opening.opened:
                text = f"{locker} ({size}) is open: put the parcel in and close the door."
            else:
                text = f"{locker} ({size}) did not open. Touch Door did not open."
            if current.replaced_door is not None:
                text += f" (Instead of {self.services.locker(current.replaced_door)}.)"
            text += "\nThen scan the next parcel, or touch Finish."
        self.query_one("#drop-status", Static).update(text)
        self.query_one("#drop-status").set_class(refusal is not None, "-refused")
        problems = self.query_one("#problems")
        problems.display = current is not None
        # Hidden in place once the door shut: the buttons below do not move under a finger.
        problems.visible = not self.door_shut
        self.query_one("#drop-count", Static).update(f"Parcels: {len(self.deposits)}")

    def finish(self) -> None:
        """Shows the summary as the store has it: the parcels deposited, and their doors."""
        deposits = [d for d in self.deposits.values() if self._deposited(d.allocation_id)]
        still_open = self.current if self.current is not None and not self.door_shut else None
        if still_open is not None and still_open in deposits:
            still_open = None
        if deposits:
            doors = ", ".join(self.services.door_name(d.door) for d in deposits)
            message = f"Parcels deposited: {len(deposits)}\nDoors: {doors}"
        else:
            message = "No parcels were deposited."
        if still_open is not None:
            # Not deposited until its door shuts: the store will record it then.
            locker = self.services.locker(still_open.door)
            message += f"\n{locker} is still open: put the parcel in and close it."
        if deposits:
            message += "\nThank you."
        self.kiosk.go_home()
        self.kiosk.push_screen(NoticeScreen("Drop-off finished", message, again=False))
