"""Courier sign-in: the driver's own 8-digit code on a digit keypad (`kiosk.flows.courier`),
then the drop-off screen as that courier."""

from __future__ import annotations

from kiosk.flows import courier
from kiosk.flows.refusals import FlowRefused, Refusal
from kiosk.ui.code_entry import CodeEntryScreen
from kiosk.ui.driver import DriverScreen
from kiosk.ui.notice import NoticeScreen


class CourierCodeScreen(CodeEntryScreen):
    TITLE_TEXT = "Courier"
    PROMPT = "Your courier code:"
    KEYS = "1234567890"
    COLUMNS = 5
    LENGTH = 8
    MIN_LENGTH = 8
    MASKED = True

    async def submit(self, code: str) -> None:
        try:
            session = courier.sign_in(self.services.ctx, code)
        except FlowRefused as refused:
            # Locked after too many wrong codes: the message says when to come back. Any other
            # refusal reads the same for every wrong code (it never tells whether one exists).
            locked = refused.refusal is Refusal.COURIER_CODE_LOCKED
            heading = "Courier sign-in locked" if locked else "Code not accepted"
            self.kiosk.push_screen(NoticeScreen(heading, refused.message))
            return
        self.kiosk.switch_screen(DriverScreen(session))
