"""Return a parcel: the customer types the return code; a door opens for the parcel."""

from __future__ import annotations

from kiosk.flows import returns
from kiosk.flows.refusals import FlowRefused
from kiosk.ui.code_entry import CodeEntryScreen
from kiosk.ui.notice import NoticeScreen
from kiosk.ui.return_door import ReturnDoorScreen


class ReturnCodeScreen(CodeEntryScreen):
    TITLE_TEXT = "Return a parcel"
    PROMPT = "Return code:"

    async def submit(self, code: str) -> None:
        ctx = self.services.ctx
        outcome = await self.kiosk.attempt(lambda: returns.drop_off_return(ctx, code))
        if isinstance(outcome, FlowRefused):
            self.kiosk.push_screen(NoticeScreen("Code not accepted", outcome.message))
        elif outcome is not None:
            self.kiosk.push_screen(ReturnDoorScreen(outcome))
