"""Staff: every door with its live state and fault; open a door, maintenance, collection.

The grid shows as many doors as fit the screen at full size (24 at 800x480, 40 at 1024x600);
a bigger kiosk's doors come in pages, turned with the two page buttons beside the actions.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Button, Static

from kiosk.flows import faults, opening, staff
from kiosk.flows.refusals import FlowRefused
from kiosk.store import doors, operations
from kiosk.store.records import Actor, Door, OperationState, Purpose
from kiosk.ui.base import KioskScreen
from kiosk.ui.collection import CollectionScreen
from shared.states import DoorStatus

BOARDS_DOWN = "Lock boards not answering: no door opens, states may be stale"

STATUS_WORDS = {
    DoorStatus.AVAILABLE: "free",
    DoorStatus.RESERVED: "reserved",
    DoorStatus.OCCUPIED: "parcel in",
    DoorStatus.AWAITING_COLLECTION: "to collect",
    DoorStatus.MAINTENANCE: "maintenance",
}

# The door grid's geometry, as kiosk.tcss lays it out (the layout tests check the result).
DOOR_WIDTH = 11  # cells: "maintenance", the longest word, without line padding
DOOR_HEIGHT = 6  # four lines between a top and a bottom border
GUTTER = 1  # between columns
# Rows that are not the grid: top bar, offline banner, the boards' banner, the grid's margin, a
# status line of up to two lines after its padding, the actions and their margin.
ROWS_AROUND = 1 + 1 + 1 + 1 + 3 + 4
COLUMNS_AROUND = 2  # the body's padding


def doors_per_page(width: int, height: int) -> tuple[int, int]:
    """Columns and rows of full-size doors that fit a screen of ``width`` x ``height`` cells."""
    columns = (width - COLUMNS_AROUND + GUTTER) // (DOOR_WIDTH + GUTTER)
    rows = (height - ROWS_AROUND) // DOOR_HEIGHT
    return max(1, columns), max(1, rows)


class StaffScreen(KioskScreen):
    """The door grid, refreshed every ``refresh_s``; touch a door, then an action."""

    TITLE_TEXT = "Staff"

    def __init__(self) -> None:
        super().__init__()
        self.selected: int | None = None
        self.doors: dict[int, Door] = {}
        self.page = 0
        self.page_size = 1

    def compose_body(self) -> ComposeResult:
        with self.services.ctx.store.transaction() as db:
            self.doors = {d.number: d for d in doors.list_doors(db)}
        yield Static("", id="board-banner")
        with Grid(id="door-grid"):
            for number in self.doors:
                door = Button("", id=f"door-{number}", classes="door")
                # The label takes the whole width: "maintenance" fills a door at 800x480.
                # (Textual's CSS refuses line-pad: 0.)
                door.styles.line_pad = 0
                yield door
        yield Static("Touch a door.", id="staff-status", classes="status-line")
        with Horizontal(classes="actions"):
            yield Button("Open door", id="open-door", disabled=True)
            yield Button("Maintenance", id="maintenance", disabled=True)
            # Shown only for a selected door with a fault (a tamper, a failed pulse).
            yield Button("Clear fault", id="clear-fault", variant="warning")
            yield Button("Collect parcels", id="collect", variant="primary")
            yield Button("Log out", id="logout")
            yield Button("◀", id="page-back", classes="page", tooltip="Previous doors")
            yield Button("▶", id="page-next", classes="page", tooltip="Next doors")

    def on_mount(self) -> None:
        self.fit(self.app.size.width, self.app.size.height)
        self.refresh_doors()
        self.set_interval(self.services.refresh_s, self.refresh_doors)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width, event.size.height)

    def fit(self, width: int, height: int) -> None:
        """Lays the grid out for a screen of ``width`` x ``height`` cells, in pages if need be."""
        columns, rows = doors_per_page(width, height)
        columns = min(columns, max(1, len(self.doors)))
        self.query_one("#door-grid", Grid).styles.grid_size_columns = columns
        self.page_size = columns * rows
        self.show_page(self.page)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.doors) // self.page_size))

    def page_doors(self) -> list[int]:
        """The doors on the page shown."""
        first = self.page * self.page_size
        return list(self.doors)[first : first + self.page_size]

    def show_page(self, page: int) -> None:
        """Shows the doors of ``page`` (from 0), and the page buttons when there are pages."""
        self.page = min(max(page, 0), self.pages - 1)
        shown = set(self.page_doors())
        for number in self.doors:
            self.query_one(f"#door-{number}").display = number in shown
        for button in self.query(".page").results(Button):
            button.display = self.pages > 1
        self.query_one("#page-back", Button).disabled = self.page == 0
        self.query_one("#page-next", Button).disabled = self.page == self.pages - 1

    def on_screen_resume(self) -> None:
        self.refresh_doors()

    def refresh_doors(self) -> None:
        """Reads every door from the store and redraws the grid, and the boards' health."""
        with self.services.ctx.store.transaction() as db:
            self.doors = {d.number: d for d in doors.list_doors(db)}
        # The grid shows what the store last recorded; while the boards do not answer that may
        # be stale, and no door can be opened: say so above the doors.
        error = self.services.board_error()
        hint = self.services.ctx.bank_health.wiring_hint
        banner = self.query_one("#board-banner", Static)
        if error is not None:
            banner.update(f"{BOARDS_DOWN} ({error})")
        else:
            # Most doors read open at boot: tell staff what to check before anything else.
            banner.update("" if hint is None else f"Check the wiring: {hint}")
        banner.set_class(error is not None or hint is not None, "-shown")
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
        self.query_one("#clear-fault", Button).display = door is not None and door.fault is not None

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
        elif button == "clear-fault" and self.selected is not None:
            self.clear_selected_fault()
        elif button == "collect":
            self.kiosk.push_screen(CollectionScreen())
        elif button == "logout":
            self.kiosk.go_home()
        elif button in ("page-back", "page-next"):
            self.show_page(self.page + (1 if button == "page-next" else -1))
            shown = self.page_doors()
            first, last = self.services.door_name(shown[0]), self.services.door_name(shown[-1])
            self._say(f"Doors {first} to {last} of {len(self.doors)}. Touch a door.")

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
        ctx, who = self.services.ctx, self.kiosk.staff_id
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

    def clear_selected_fault(self) -> None:
        door = self.selected
        assert door is not None
        ctx = self.services.ctx
        try:
            fault = faults.clear_fault(
                ctx.store,
                door,
                actor=Actor.STAFF,
                cleared_by=self.kiosk.staff_id,
                now=ctx.clock.now(),
            )
        except FlowRefused as refused:
            self._say(refused.message)
            return
        locker = self.services.locker(door)
        self._say(f"{locker}: fault cleared ({fault})." if fault else f"{locker} has no fault.")
        self.refresh_doors()

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
