"""The doors a pickup code opened: take the parcel and close the door, or try a door again."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from kiosk.flows import opening
from kiosk.flows.opening import DoorOpening
from kiosk.flows.pickup import PickupResult
from kiosk.flows.refusals import FlowRefused
from kiosk.store.records import Actor
from kiosk.ui.base import KioskScreen


class PickupResultScreen(KioskScreen):
    """One line per door; a door not seen open offers "Try again" (`retry_opening`)."""

    TITLE_TEXT = "Pick up a parcel"

    def __init__(self, result: PickupResult) -> None:
        super().__init__()
        self.openings: dict[int, DoorOpening] = {o.door: o for o in result.openings}
        self.expired = result.expired_parcels

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

    def _show(self, door: int, note: str | None = None) -> None:
        opened = self.openings[door].opened
        locker = self.services.locker(door)
        text = (
            f"{locker} is open: take your parcel and close the door."
            if opened
            else note or f"{locker} did not open. Touch Try again, or ask staff for help."
        )
        self.query_one(f"#door-text-{door}", Static).update(text)
        self.query_one(f"#door-{door}").set_class(not opened, "-not-open")
        self.query_one(f"#retry-{door}", Button).display = not opened

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
