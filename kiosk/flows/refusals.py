"""Why a kiosk flow said no, in words a person at the touchscreen can act on.

Every flow refuses by raising `FlowRefused` with a `Refusal` (a machine-readable reason the UI
and the audit log use) and a message for the screen. A refused flow has changed nothing but its
audit entry and, for wrong codes, the keypad's failure count.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class Refusal(StrEnum):
    INVALID_CODE = "invalid_code"
    UNKNOWN_CODE = "unknown_code"
    CODE_USED = "code_used"
    CODE_EXPIRED = "code_expired"
    WRONG_KIND_OF_CODE = "wrong_kind_of_code"
    NOT_YET_DEPOSITED = "not_yet_deposited"
    KEYPAD_LOCKED = "keypad_locked"
    UNKNOWN_BARCODE = "unknown_barcode"
    ALREADY_DEPOSITED = "already_deposited"
    NOT_FOR_DROP_OFF = "not_for_drop_off"
    RESERVATION_EXPIRED = "reservation_expired"
    NO_FREE_DOOR = "no_free_door"
    DOOR_BUSY = "door_busy"
    UNKNOWN_DOOR = "unknown_door"
    UNKNOWN_OPERATION = "unknown_operation"
    NOT_RETRYABLE = "not_retryable"
    NOT_COLLECTABLE = "not_collectable"
    DOOR_HAS_PARCEL = "door_has_parcel"
    # Issue 11: the lock boards do not answer; nothing was committed (a code stays valid).
    BOARDS_DOWN = "boards_down"
    WRONG_STAFF_PIN = "wrong_staff_pin"
    STAFF_PIN_LOCKED = "staff_pin_locked"
    # Issue 11: couriers.
    WRONG_COURIER_CODE = "wrong_courier_code"
    COURIER_CODE_LOCKED = "courier_code_locked"
    NOT_PERMITTED = "not_permitted"  # the courier may not do this (permissions, carrier)
    SESSION_ENDED = "session_ended"  # the courier was revoked, or signed out


class FlowRefused(Exception):
    """A flow that could not go ahead, with what to tell the person.

    Attributes:
        refusal: The machine-readable reason.
        message: One or two sentences for the screen: what happened and what to do.
        retry_after: For a locked keypad, how long until it takes codes again.
    """

    def __init__(
        self, refusal: Refusal, message: str, *, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(f"{refusal}: {message}")
        self.refusal = refusal
        self.message = message
        self.retry_after = retry_after
