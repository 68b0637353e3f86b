"""The doors a pickup code opened: take the parcel and close the door, or try a door again.

The screen watches each door's operation, as the return screen does: once the door monitor has
seen a door shut (its operation is over), the line says whether the parcel was picked up and the
door offers nothing more.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from kiosk.flows import opening
from kiosk.flows.opening import DoorOpening
from kiosk.flows.pickup import PickupResult
from kiosk.flows.refusals import FlowRefused
from kiosk.store import allocations, operations
from kiosk.store.records import Actor
from kiosk.ui.base import KioskScreen
from shared.states import AllocationStatus


class PickupResultScreen(KioskScreen):
    """One line per door; a door not seen open offers "Try again" (`retry_opening`)."""

    TITLE_TEXT = "Pick up a parcel"

    def __init__(self, result: PickupResult) -> None:
        super().__init__()
        self.openings: dict[int, DoorOpening] = {o.door: o for o in result.openings}
        self.expired = result.expired_parcels
        self.shut: dict[int, str] = {}  # door -> what its closing settled

    def compose_body(self) -> ComposeResult:
        with Vertical(id="doors"):
            for door in self.openings:
                with Horizontal(classes="door-line", id=f"door-{door}"):
                    yield Static("", classes="door-text", id=f"door-text-{door}")
                    yield Button("Try again", id=f"retry-{door}", classes="retry")
        if self.expired:
            yield Static(
                f"{self.expired} more parcel(s) for this code stayed in the locker: their "
                "pickup time has passed. Contact the carrier.",
                classes="message",
            )
        with Horizontal(classes="actions"):
            yield Button("Done", id="done", variant="success")

    def on_mount(self) -> None:
        for door in self.openings:
            self._show(door)
        self.query_one("#done", Button).focus()
        self.set_interval(self.services.refresh_s, self.check_closed)

    def check_closed(self) -> None:
        """Asks the store which doors' operations are over (the monitor saw them shut)."""
        for door, door_opening in self.openings.items():
            if door in self.shut:
                continue
            with self.services.ctx.store.transaction() as db:
                operation = operations.get_operation(db, door_opening.operation_id)
                parcel = (
                    None
                    if door_opening.allocation_id is None
                    else allocations.find_allocation(db, door_opening.allocation_id)
                )
            if operation.state.is_active:
                continue
            locker = self.services.locker(door)
            if parcel is not None and parcel.status is AllocationStatus.PICKED_UP:
                self.shut[door] = f"{locker} is shut: parcel picked up. Thank you."
            elif operation.opened_at is None:
                self.shut[door] = f"{locker} did not open. Please ask staff for help."
            else:
                self.shut[door] = f"{locker} is shut with your parcel still inside: ask staff."
            self._show(door)

    def _show(self, door: int, note: str | None = None) -> None:
        opened = self.openings[door].opened
        locker = self.services.locker(door)
        if door in self.shut:
            text = self.shut[door]
        elif opened:
            text = f"{locker} is open: take your parcel and close the door."
        else:
            text = note or f"{locker} did not open. Touch Try again, or ask staff for help."
        self.query_one(f"#door-text-{door}", Static).update(text)
        self.query_one(f"#door-{door}").set_class(not opened and door not in self.shut, "-not-open")
        self.query_one(f"#retry-{door}", Button).display = not opened and door not in self.shut

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "done":
            self.kiosk.go_home()
        elif button.startswith("retry-"):
            self.run_worker(self.retry(int(button.removeprefix("retry-"))), group="flow")

    async def retry(self, door: int) -> None:
        operation_id = self.openings[door].operation_id
        outcome = await self.kiosk.attempt(
            lambda: opening.retry_opening(self.services.ctx, operation_id, Actor.CUSTOMER)
        )
        if isinstance(outcome, FlowRefused):
            self._show(door, outcome.message)
        elif outcome is not None:
            self.openings[door] = outcome
            self._show(door)
