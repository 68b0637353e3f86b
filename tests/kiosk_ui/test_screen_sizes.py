"""Every main screen is usable on both touchscreens: 800x480 (100x30 cells) and 1024x600 (128x37).

Usable means: every button and field shown lies wholly on the screen, unclipped by its
container, with its whole label; a tap on its middle reaches it; no two overlap; every text
shown fits its box; and nothing scrolls (a kiosk has no scroll wheel, and a person does not
guess that there is more below). Each screen is reached as a person would, with the most it
shows (a door that did not open, a replacement door, an expired parcel, a fault).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from rich.cells import cell_len
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Static

from kiosk.flows.context import FlowContext, FlowRules
from kiosk.hardware.errors import BoardTimeout
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import doors
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import AllocationKind
from kiosk.ui.app import KioskApp
from kiosk.ui.code_entry import CodeEntryScreen
from kiosk.ui.collection import CollectionScreen
from kiosk.ui.driver import DriverScreen
from kiosk.ui.home import HomeScreen
from kiosk.ui.notice import NoticeScreen
from kiosk.ui.pickup_result import PickupResultScreen
from kiosk.ui.return_door import ReturnDoorScreen
from kiosk.ui.services import SCREEN_800x480, SCREEN_1024x600
from kiosk.ui.staff import BOARDS_DOWN, StaffScreen
from shared.clock import ManualClock
from shared.sizes import Size
from shared.states import AllocationStatus
from tests.flows.conftest import FAST, SECRET, START, Kiosk
from tests.kiosk_ui.conftest import STAFF_PIN, FakeSync, kiosk_app
from tests.kiosk_ui.helpers import settle, tap, text

SIZES = pytest.mark.parametrize(
    "size", [SCREEN_800x480, SCREEN_1024x600], ids=["800x480", "1024x600"]
)
CODE = "ABC234"
SCROLLING = ("auto", "scroll")

Reach = Callable[[Kiosk, FakeDoorBank, Pilot[None]], Awaitable[None]]


def shown(widget: Widget) -> bool:
    """Whether the widget and all its containers are displayed and visible."""
    nodes = [widget, *widget.ancestors]
    return all(node.display and node.visible for node in nodes if isinstance(node, Widget))


def layout_problems(app: KioskApp) -> list[str]:
    """What keeps a person from reading or touching something on the current screen."""
    screen = app.screen
    area = screen.region
    problems: list[str] = []
    for widget in [screen, *screen.query("*")]:
        # A widget that cannot scroll clips instead: the checks of what it holds find that.
        scrolls_x = widget.styles.overflow_x in SCROLLING and widget.max_scroll_x
        scrolls_y = widget.styles.overflow_y in SCROLLING and widget.max_scroll_y
        if shown(widget) and (scrolls_x or scrolls_y):
            problems.append(
                f"{widget!r} scrolls by {widget.max_scroll_x}x{widget.max_scroll_y} cells"
            )
    actions = [w for w in screen.query("Button, Input") if shown(w)]
    texts = [w for w in screen.query(Static) if shown(w) and not isinstance(w, Button)]
    for widget in [*actions, *texts]:
        name = f"#{widget.id}" if widget.id else repr(widget)
        geometry = screen.find_widget(widget)
        region = geometry.region
        if region.area == 0:
            problems.append(f"{name} has no room ({region})")
            continue
        if not area.contains_region(region):
            problems.append(f"{name} at {region} is not wholly on the screen {area}")
        if geometry.visible_region != region:
            problems.append(f"{name} at {region} is clipped to {geometry.visible_region}")
        box = widget.content_region
        needed = widget.get_content_height(region.size, area.size, box.width)
        if needed > box.height:
            problems.append(f"{name} needs {needed} lines, has {box.height}")
        if isinstance(widget, Button):
            widest = max(cell_len(line) for line in str(widget.label).splitlines() or [""])
            needed_width = widest + 2 * widget.styles.line_pad
            if needed_width > box.width:
                problems.append(f"{name}'s label needs {needed_width} cells, has {box.width}")
        if widget in actions and area.contains_point(region.center):
            hit, _ = screen.get_widget_at(*region.center)
            if hit is not widget and widget not in hit.ancestors:
                problems.append(f"a tap on the middle of {name} reaches {hit!r}")
    for index, first in enumerate(actions):
        for second in actions[index + 1 :]:
            if first.region.overlaps(second.region):
                problems.append(f"#{first.id} and #{second.id} overlap")
    return problems


def action_ids(app: KioskApp) -> set[str]:
    return {w.id or "" for w in app.screen.query("Button, Input") if shown(w)}


# How a person reaches each screen, with the most it can show.


async def home(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    assert isinstance(pilot.app.screen, HomeScreen)


async def pickup_keypad(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    await tap(pilot, "#pickup")
    await pilot.press(*"ABC")
    assert isinstance(pilot.app.screen, CodeEntryScreen)


async def pickup_result(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    past = kiosk.clock.now() - timedelta(hours=1)
    for allocation_id, door in (("a1", 2), ("a2", 6), ("a3", 7)):
        kiosk.allocate(allocation_id, code=CODE, door=door, status=AllocationStatus.DEPOSITED)
    kiosk.allocate(
        "a4", code=CODE, door=3, status=AllocationStatus.DEPOSITED, pickup_expires_at=past
    )
    bank.jam(6)
    await pilot.press("1", *CODE, "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, PickupResultScreen)
    assert pilot.app.screen.query_one("#retry-6").display


async def driver(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    kiosk.allocate("p1", door=1, barcode="PKG-1")
    bank.jam(1)
    await tap(pilot, "#driver")
    await pilot.press(*"PKG-1", "enter")
    await settle(pilot)
    await tap(pilot, "#did-not-open")
    await settle(pilot)
    assert isinstance(pilot.app.screen, DriverScreen)
    assert pilot.app.screen.query_one("#problems").display


async def staff_pin(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    await tap(pilot, "#staff")
    await pilot.press(*STAFF_PIN[:2])
    assert isinstance(pilot.app.screen, CodeEntryScreen)


async def staff_grid(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    kiosk.allocate("p1", door=3, code=CODE, status=AllocationStatus.DEPOSITED)
    await tap(pilot, "#staff")
    await pilot.press(*STAFF_PIN, "enter")
    await settle(pilot)
    await tap(pilot, "#door-5")
    await tap(pilot, "#maintenance")
    await settle(pilot)
    bank.fail_with(BoardTimeout("no reply to status of board 1 within 0.1 s"))
    await tap(pilot, "#open-door")
    await settle(pilot)
    bank.fail_with(None)
    await tap(pilot, "#door-5")  # selected again: the status line has its reason and fault
    assert isinstance(pilot.app.screen, StaffScreen)
    assert "fault: failed: BoardTimeout" in text(pilot.app, "#staff-status")


async def collection(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    past = kiosk.clock.now() - timedelta(hours=1)
    for allocation_id, door in (("e1", 1), ("e2", 4), ("e3", 6), ("e4", 8)):
        kiosk.allocate(
            allocation_id, door=door, status=AllocationStatus.DEPOSITED, pickup_expires_at=past
        )
    await staff_grid(kiosk, bank, pilot)
    await tap(pilot, "#collect")
    await tap(pilot, "#open-all")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CollectionScreen)


async def return_code(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    await tap(pilot, "#return")
    await pilot.press(*"RTN")
    assert isinstance(pilot.app.screen, CodeEntryScreen)


async def return_door(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    kiosk.allocate("r1", code="RTN234", door=7, size=Size.XLARGE, kind=AllocationKind.RETURN)
    bank.jam(7)
    await tap(pilot, "#return")
    await pilot.press(*"RTN234", "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ReturnDoorScreen)
    assert pilot.app.screen.query_one("#retry").display


async def refusal(kiosk: Kiosk, bank: FakeDoorBank, pilot: Pilot[None]) -> None:
    await pilot.press("1", *"ZZZ999", "enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, NoticeScreen)


SCREENS: dict[str, Reach] = {
    "home": home,
    "pickup_keypad": pickup_keypad,
    "pickup_result": pickup_result,
    "driver": driver,
    "staff_pin": staff_pin,
    "staff_grid": staff_grid,
    "collection": collection,
    "return_code": return_code,
    "return_door": return_door,
    "refusal": refusal,
}

# What each screen must offer, so that a check passing on an emptied screen cannot pass.
ACTIONS = {
    "home": {"pickup", "driver", "return", "staff"},
    "pickup_keypad": {"key-A", "key-Z", "key-9", "key-back", "key-clear", "key-ok", "cancel"},
    "pickup_result": {"retry-6", "done"},
    "driver": {"barcode", "open", "did-not-open", "not-empty", "finish"},
    "staff_pin": {"key-0", "key-9", "key-ok", "cancel"},
    "staff_grid": {*(f"door-{n}" for n in range(1, 9)), "open-door", "maintenance", "logout"},
    "collection": {*(f"collected-e{n}" for n in range(1, 5)), "open-all", "back"},
    "return_code": {"key-R", "key-ok", "cancel"},
    "return_door": {"retry", "done"},
    "refusal": {"again", "home"},
}


@SIZES
@pytest.mark.parametrize("name", list(SCREENS))
async def test_every_action_and_text_fits_the_screen_without_scrolling(
    kiosk: Kiosk,
    fake_bank: FakeDoorBank,
    build_app: Callable[..., KioskApp],
    name: str,
    size: tuple[int, int],
) -> None:
    app = build_app(refresh_s=60)
    async with app.run_test(size=size) as pilot:
        await SCREENS[name](kiosk, fake_bank, pilot)
        await pilot.pause()
        assert app.screen.region == Region(0, 0, *size)
        assert ACTIONS[name] <= action_ids(app)
        problems = layout_problems(app)
        assert not problems, "\n".join(problems)


def kiosk_of(count: int) -> Kiosk:
    """A kiosk of ``count`` small doors (the fixture's has eight), on a fake bank."""
    layout = dict.fromkeys(range(1, count + 1), Size.SMALL)
    store = Store.in_memory(CodeHasher(SECRET), KioskIdentity("loc-test", "kiosk-test"))
    with store.transaction() as db:
        doors.sync_layout(db, layout, START)
    clock = ManualClock(START)
    bank = FakeDoorBank(sorted(layout), FAST)
    return Kiosk(FlowContext(store=store, bank=bank, clock=clock, rules=FlowRules()), clock)


@SIZES
@pytest.mark.parametrize(
    ("count", "pages"),
    [(20, {SCREEN_800x480: 1, SCREEN_1024x600: 1}), (48, {SCREEN_800x480: 2, SCREEN_1024x600: 2})],
    ids=["20-doors", "48-doors"],
)
async def test_a_big_kiosks_doors_come_in_pages_that_each_fit(
    count: int, pages: dict[tuple[int, int], int], size: tuple[int, int]
) -> None:
    kiosk = kiosk_of(count)
    app = kiosk_app(kiosk, refresh_s=60)
    seen: list[set[str]] = []
    async with app.run_test(size=size) as pilot:
        await pilot.press("4", *STAFF_PIN, "enter")
        await settle(pilot)
        assert isinstance(app.screen, StaffScreen)
        while True:
            problems = layout_problems(app)
            assert not problems, "\n".join(problems)
            seen.append({i for i in action_ids(app) if i.startswith("door-")})
            if not app.screen.query_one("#page-next").display:
                break
            if app.screen.query_one("#page-next", Button).disabled:
                break
            await tap(pilot, "#page-next")
            await pilot.pause()
        if len(seen) > 1:
            assert text(app, "#staff-status").endswith(f"of {count}. Touch a door.")
        await tap(pilot, f"#door-{count}")  # a door of the last page works like any other
        assert text(app, "#staff-status") == f"Locker {count}: small, free"
    assert len(seen) == pages[size]
    assert set().union(*seen) == {f"door-{n}" for n in range(1, count + 1)}
    assert sum(len(page) for page in seen) == count  # no door on two pages
    kiosk.store.close()


@SIZES
async def test_the_staff_grid_fits_with_both_banners_shown(
    kiosk: Kiosk, fake_bank: FakeDoorBank, size: tuple[int, int]
) -> None:
    error = "BoardTimeout: no reply to query all of board 1 within 0.25 s after 3 attempts"
    app = kiosk_app(kiosk, sync=FakeSync(connected=False), refresh_s=60, board_error=lambda: error)
    async with app.run_test(size=size) as pilot:
        await staff_grid(kiosk, fake_bank, pilot)
        await pilot.pause()
        assert text(app, "#board-banner").startswith(BOARDS_DOWN)
        assert app.screen.query_one("#offline-banner").display
        assert ACTIONS["staff_grid"] <= action_ids(app)
        problems = layout_problems(app)
        assert not problems, "\n".join(problems)
