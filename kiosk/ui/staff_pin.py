"""Staff sign-in: a PIN on a digit keypad, checked by the service the UI is given."""

from __future__ import annotations

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
        if self.services.check_staff_pin(code):
            self.kiosk.switch_screen(StaffScreen())
        else:
            self.kiosk.push_screen(NoticeScreen("Wrong PIN", "That PIN is not right."))
