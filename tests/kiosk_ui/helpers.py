"""Reading the screen in UI tests, and touching it."""

from __future__ import annotations

import asyncio

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Button, Static

TAP_WAIT_S = 5.0


def text(app: App[object], selector: str) -> str:
    """The text of a Static on the current screen."""
    return str(app.screen.query_one(selector, Static).render())


async def settle(pilot: Pilot[object]) -> None:
    """Lets workers (the flows) finish and the screen catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def tap(pilot: Pilot[object], selector: str) -> None:
    """Touches a button, once its previous press has finished, and checks the touch reached it.

    Textual ignores a click on a button still showing its last press (``-active``, 0.2 s); a
    flow on the fake bank ends sooner than that, so tapping the same button again at once
    would be lost.
    """
    await pilot.pause()  # the screen as a person sees it: laid out after the last change
    button = pilot.app.screen.query_one(selector, Button)
    deadline = asyncio.get_running_loop().time() + TAP_WAIT_S
    while button.has_class("-active"):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{selector} still shows its last press")
        await pilot.pause(0.02)
    assert await pilot.click(selector), f"the tap on {selector} reached another widget"
