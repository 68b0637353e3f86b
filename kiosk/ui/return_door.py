"""A return's open door: put the parcel in and close the door; the closing confirms it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from kiosk.flows import opening
from kiosk.flows.opening import DoorOpening
from kiosk.flows.refusals import FlowRefused
from kiosk.flows.returns import ReturnResult
from kiosk.store import allocations
from kiosk.store.records import Actor
from kiosk.ui.base import KioskScreen
from shared.states import AllocationStatus


class ReturnDoorScreen(KioskScreen):
    """Watches the return until the door monitor records it deposited (the door shut)."""

    TITLE_TEXT = "Return a parcel"

    def __init__(self, result: ReturnResult) -> None:
        super().__init__()
        self.allocation_id = result.drop_off.allocation_id
        self.opening: DoorOpening = result.drop_off.opening
        self.confirmed = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="return-status", classes="message")
        with Horizontal(classes="actions"):
            yield Button("Try again", id="retry", variant="warning")
            yield Button("Done", id="done", variant="success")

    def on_mount(self) -> None:
        self._show()
        # As on the pickup result: Enter on a keyboard (or the scanner's) means Done.
        self.query_one("#done", Button).focus()
        self.set_interval(self.services.refresh_s, self.check_closed)

    def check_closed(self) -> None:
        """Asks the store whether the door monitor has seen the door shut on the return."""
        if self.confirmed:
            return
        with self.services.ctx.store.transaction() as db:
            parcel = allocations.get_allocation(db, self.allocation_id)
        if parcel.status is AllocationStatus.DEPOSITED:
            self.confirmed = True
            self._show()

    def _show(self, note: str | None = None) -> None:
        locker = self.services.locker(self.opening.door)
        if self.confirmed:
            text = f"Thank you: your return is in {locker} and confirmed."
        elif self.opening.opened:
            text = f"{locker} is open: put your return in and close the door to confirm."
        else:
            text = note or f"{locker} did not open. Touch Try again, or ask staff for help."
        self.query_one("#return-status", Static).update(text)
        self.query_one("#retry").display = not self.opening.opened and not self.confirmed

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "done":
            self.kiosk.go_home()
        elif event.button.id == "retry":
            self.run_worker(self.retry(), group="flow")

    async def retry(self) -> None:
        ctx, operation_id = self.services.ctx, self.opening.operation_id
        outcome = await self.kiosk.attempt(
            lambda: opening.retry_opening(ctx, operation_id, Actor.CUSTOMER)
        )
        if isinstance(outcome, FlowRefused):
            self._show(outcome.message)
        elif outcome is not None:
            self.opening = outcome
            self._show()
