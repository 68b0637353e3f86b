"""Collection: open the doors of parcels due for collection, then confirm each one taken.

The screen refreshes each parcel from the store: a parcel the kiosk recorded collected on its
own (the door shut on an empty compartment) is shown collected, and its button goes, instead of
offering "Collected" for a parcel the store no longer has to collect.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Static

from kiosk.flows import courier, staff
from kiosk.flows.courier import CourierSession
from kiosk.flows.opening import DoorOpening
from kiosk.flows.refusals import FlowRefused
from kiosk.store import allocations, people
from kiosk.store.records import Allocation
from kiosk.ui.base import KioskScreen
from shared.states import AllocationStatus


class CollectionScreen(KioskScreen):
    """Parcels due for collection; "Open doors" opens them, then "Collected" per parcel."""

    TITLE_TEXT = "Staff: collection"

    def __init__(self, session: CourierSession | None = None) -> None:
        super().__init__()
        # A courier's collection (issue 11): only their carrier's parcels their permissions
        # allow, recorded in their session. None: staff, who collect everything due.
        self.session = session
        if session is not None:
            self.TITLE_TEXT = f"Courier {session.courier.name}: collection"
        self.parcels: list[Allocation] = []
        self.openings: dict[int, DoorOpening] = {}
        self.collected: set[str] = set()
        self.collected_by_kiosk: set[str] = set()

    def compose_body(self) -> ComposeResult:
        ctx = self.services.ctx
        with ctx.store.transaction() as db:
            self.parcels = allocations.collectable(db, ctx.clock.now())
            if self.session is not None:
                who = self.session.courier
                self.parcels = [
                    p
                    for p in self.parcels
                    if courier.may_collect(who, p, people.carrier_of(db, p.allocation_id))
                ]
        yield Static(self._summary(), id="collect-status", classes="status-line")
        with VerticalScroll(id="collect-list"):
            for parcel in self.parcels:
                assert parcel.door is not None
                with Horizontal(classes="collect-line", id=f"line-{parcel.allocation_id}"):
                    yield Static(self._line(parcel), classes="collect-text")
                    yield Button("Collected", id=f"collected-{parcel.allocation_id}", disabled=True)
        with Horizontal(classes="actions"):
            yield Button("Open doors", id="open-all", variant="primary", disabled=not self.parcels)
            yield Button("Back", id="back")

    def on_mount(self) -> None:
        self.set_interval(self.services.refresh_s, self.check_collected)

    def check_collected(self) -> None:
        """Marks collected the parcels the store has recorded collected (an empty compartment)."""
        with self.services.ctx.store.transaction() as db:
            done = {
                parcel.allocation_id
                for parcel in self.parcels
                if parcel.allocation_id not in self.collected
                and (found := allocations.find_allocation(db, parcel.allocation_id)) is not None
                and found.status is AllocationStatus.COLLECTED
            }
        if done:
            self.collected |= done
            self.collected_by_kiosk |= done
            self._redraw()

    def _summary(self, note: str | None = None) -> str:
        if note:
            return note
        if not self.parcels:
            return "Nothing to collect."
        left = len(self.parcels) - len(self.collected)
        return f"Parcels to collect: {left} of {len(self.parcels)}"

    def _line(self, parcel: Allocation) -> str:
        assert parcel.door is not None
        where = self.services.locker(parcel.door)
        state = ""
        opening = self.openings.get(parcel.door)
        if parcel.allocation_id in self.collected_by_kiosk:
            state = ": collected (door shut, compartment empty)"
        elif parcel.allocation_id in self.collected:
            state = ": collected, close the door"
        elif opening is not None:
            state = ": open" if opening.opened else ": did not open"
        return f"{where} {parcel.kind.value} {parcel.barcode}{state}"

    def _redraw(self, note: str | None = None) -> None:
        self.query_one("#collect-status", Static).update(self._summary(note))
        for parcel in self.parcels:
            line = self.query_one(f"#line-{parcel.allocation_id}")
            line.query_one(".collect-text", Static).update(self._line(parcel))
            button = self.query_one(f"#collected-{parcel.allocation_id}", Button)
            button.disabled = parcel.door not in self.openings or (
                parcel.allocation_id in self.collected
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "back":
            self.dismiss()
        elif button == "open-all":
            event.button.disabled = True
            self.run_worker(self.open_all(), group="flow")
        elif button.startswith("collected-"):
            self.run_worker(self.confirm(button.removeprefix("collected-")), group="flow")

    async def open_all(self) -> None:
        ctx, who, session = self.services.ctx, self.kiosk.staff_id, self.session
        if session is not None:
            outcome = await self.kiosk.attempt(lambda: courier.collect_all(ctx, session))
        else:
            outcome = await self.kiosk.attempt(lambda: staff.open_for_collection(ctx, staff_id=who))
        if isinstance(outcome, FlowRefused):
            self._redraw(outcome.message)
        elif isinstance(outcome, tuple):
            self.openings = {o.door: o for o in outcome}
            self._redraw()

    async def confirm(self, allocation_id: str) -> None:
        ctx, who = self.services.ctx, self.kiosk.staff_id

        async def collect() -> Allocation:
            if self.session is not None:
                return courier.confirm_collected(ctx, self.session, allocation_id)
            return staff.confirm_collected(ctx, allocation_id, staff_id=who)

        outcome = await self.kiosk.attempt(collect)
        if isinstance(outcome, FlowRefused):
            self._redraw(outcome.message)
        elif isinstance(outcome, Allocation):
            self.collected.add(allocation_id)
            self._redraw()
