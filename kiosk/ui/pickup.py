"""Pickup: the customer types the six-character code from their message."""

from __future__ import annotations

from kiosk.ui.code_entry import CodeEntryScreen


class PickupScreen(CodeEntryScreen):
    TITLE_TEXT = "Pick up a parcel"
    PROMPT = "Pickup code:"

    async def submit(self, code: str) -> None:
        await self.kiosk.pick_up(code, via="keypad")
