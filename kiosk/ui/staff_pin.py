"""Staff sign-in: a PIN on a digit keypad, checked by the service the UI is given and guarded
against guessing (`kiosk.flows.staff_sign_in`)."""

from __future__ import annotations

from kiosk.flows import staff_sign_in
from kiosk.flows.refusals import FlowRefused
from kiosk.ui.code_entry import CodeEntryScreen
from kiosk.ui.notice import NoticeScreen
from kiosk.ui.staff import StaffScreen


class StaffPinScreen(CodeEntryScreen):
    TITLE_TEXT = "Staff"
    PROMPT = "Staff PIN:"
    KEYS = "1234567890"
    COLUMNS = 5
    LENGTH = 12
    MIN_LENGTH = 4
    MASKED = True

    async def submit(self, code: str) -> None:
        # Guarded (issue 11): wrong PINs are counted and lock sign-in, with an operator alert.
        try:
            member = staff_sign_in.sign_in(self.services.ctx, code, self.services.check_staff_pin)
        except FlowRefused as refused:
            self.kiosk.push_screen(NoticeScreen("Wrong PIN", refused.message))
            return
        self.kiosk.staff_id = member.staff_id
        self.kiosk.switch_screen(StaffScreen())
