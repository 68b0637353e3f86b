"""Staff: every door with its live state and fault; open a door, maintenance, collection."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Button, Static

from kiosk.flows import opening, staff
from kiosk.flows.refusals import FlowRefused
from kiosk.store import doors, operations
from kiosk.store.records import Actor, Door, OperationState, Purpose
from kiosk.ui.base import KioskScreen
from kiosk.ui.collection import CollectionScreen
from shared.states import DoorStatus

STATUS_WORDS = {
    DoorStatus.AVAILABLE: "free",
    DoorStatus.RESERVED: "reserved",
    DoorStatus.OCCUPIED: "parcel in",
    DoorStatus.AWAITING_COLLECTION: "to collect",
    DoorStatus.MAINTENANCE: "maintenance",
}


class StaffScreen(KioskScreen):
    """The door grid, refreshed every ``refresh_s``; touch a door, then an action."""

    TITLE_TEXT = "Staff"

    def __init__(self) -> None:
        super().__init__()
        self.selected: int | None = None
        self.doors: dict[int, Door] = {}

    def compose_body(self) -> ComposeResult:
        with self.services.ctx.store.transaction() as db:
            self.doors = {d.number: d for d in doors.list_doors(db)}
        with Grid(id="door-grid"):
            for number in self.doors:
                yield Button("", id=f"door-{number}", classes="door")
        yield Static("Touch a door.", id="staff-status", classes="status-line")
        with Horizontal(classes="actions"):
            yield Button("Open door", id="open-door", disabled=True)
            yield Button("Maintenance", id="maintenance", disabled=True)
            yield Button("Collect parcels", id="collect", variant="primary")
            yield Button("Log out", id="logout")

    def on_mount(self) -> None:
        self.refresh_doors()
        self.set_interval(self.services.refresh_s, self.refresh_doors)

    def on_screen_resume(self) -> None:
        self.refresh_doors()

    def refresh_doors(self) -> None:
        """Reads every door from the store and redraws the grid."""
        with self.services.ctx.store.transaction() as db:
            self.doors = {d.number: d for d in doors.list_doors(db)}
        for number, door in self.doors.items():
            buttons = self.query(f"#door-{number}")
            if not buttons:
                continue
            button = buttons.first(Button)
            sensor = {True: "OPEN", False: "shut", None: "?"}[door.sensor_open]
            lines = [self.services.door_name(number), door.size.value, STATUS_WORDS[door.status]]
            lines.append("FAULT" if door.fault else sensor)
            button.label = "\n".join(lines)
            button.set_class(door.status is DoorStatus.MAINTENANCE, "-maintenance")
            button.set_class(door.fault is not None, "-fault")
            button.set_class(bool(door.sensor_open), "-open")
            button.set_class(number == self.selected, "-selected")
        self._actions()

    def _actions(self) -> None:
        door = None if self.selected is None else self.doors.get(self.selected)
        self.query_one("#open-door", Button).disabled = door is None
        maintenance = self.query_one("#maintenance", Button)
        maintenance.disabled = door is None
        on = door is not None and door.status is DoorStatus.MAINTENANCE
        maintenance.label = "End maintenance" if on else "Maintenance"

    def _say(self, text: str) -> None:
        self.query_one("#staff-status", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button.startswith("door-"):
            self.select(int(button.removeprefix("door-")))
        elif button == "open-door" and self.selected is not None:
            self.run_worker(self.open_selected(), group="flow")
        elif button == "maintenance" and self.selected is not None:
            self.run_worker(self.toggle_maintenance(), group="flow")
        elif button == "collect":
            self.kiosk.push_screen(CollectionScreen())
        elif button == "logout":
            self.kiosk.go_home()

    def select(self, number: int) -> None:
        self.selected = number
        door = self.doors[number]
        words = f"{self.services.locker(number)}: {door.size.value}, {STATUS_WORDS[door.status]}"
        if door.maintenance_reason:
            words += f" ({door.maintenance_reason})"
        if door.fault:
            words += f"; fault: {door.fault}"
        self._say(words)
        self.refresh_doors()

    async def open_selected(self) -> None:
        door = self.selected
        assert door is not None
        ctx, who = self.services.ctx, self.services.staff_id
        failed = self._failed_open(door)
        if failed is None:
            outcome = await self.kiosk.attempt(
                lambda: staff.open_door(
                    ctx, door, actor=Actor.STAFF, reason="staff at the kiosk", requested_by=who
                )
            )
        else:
            # An open of this door that did not open keeps the door until it is abandoned
            # (`FlowRules.abandon_after`): a new open would be refused as busy, so pulse again.
            outcome = await self.kiosk.attempt(
                lambda: opening.retry_opening(ctx, failed, Actor.STAFF)
            )
        locker = self.services.locker(door)
        if isinstance(outcome, FlowRefused):
            self._say(outcome.message)
        elif outcome is not None:
            self._say(
                f"{locker} is open."
                if outcome.opened
                else f"{locker} did not open. Touch Open door to try again."
            )
        self.refresh_doors()

    def _failed_open(self, door: int) -> str | None:
        """The operation id of a staff or remote open of ``door`` that did not open, if any."""
        with self.services.ctx.store.transaction() as db:
            active = operations.active_operation(db, door)
        if (
            active is not None
            and active.purpose is Purpose.OPEN
            and active.state in (OperationState.NOT_DETECTED, OperationState.FAILED)
        ):
            return active.operation_id
        return None

    async def toggle_maintenance(self) -> None:
        door = self.selected
        assert door is not None
        on = self.doors[door].status is not DoorStatus.MAINTENANCE
        ctx = self.services.ctx

        async def change() -> bool:
            reason = "set by staff at the kiosk" if on else None
            staff.set_maintenance(ctx, door, on, reason=reason, actor=Actor.STAFF)
            return True

        outcome = await self.kiosk.attempt(change)
        locker = self.services.locker(door)
        if isinstance(outcome, FlowRefused):
            self._say(outcome.message)
        elif outcome is not None:
            self._say(f"{locker} is {'out of service' if on else 'back in service'}.")
        self.refresh_doors()
