"""Reading the screen in UI tests."""

from __future__ import annotations

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static


def text(app: App[object], selector: str) -> str:
    """The text of a Static on the current screen."""
    return str(app.screen.query_one(selector, Static).render())


async def settle(pilot: Pilot[object]) -> None:
    """Lets workers (the flows) finish and the screen catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
