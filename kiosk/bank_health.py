"""Whether the door bank can be used now: what the door monitor last learnt from it.

One `BankHealth` per kiosk lives in the `FlowContext`, so the flows, the touchscreen, the
heartbeat and the door monitor read the same facts. The monitor is its only writer: it notes each
failed poll (a silent board, a lost port) and each poll that answers again.

Why the flows look at it before committing to a door: a pickup code is spent in the transaction
that commits its openings, and a pulse on a bank known not to answer would fail anyway, stranding
the parcel behind a spent code. While `BankHealth.unavailable` says why, a flow refuses before it
changes anything (`kiosk.flows.refusals.Refusal.BOARDS_DOWN`): the customer is told to come back,
and the code stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DOWN_AFTER_FAILED_POLLS = 2
"""Failed polls in a row (each after the link's own retries) before the bank counts as down.

One failed poll can be a burst of line noise or a kiosk too busy to read its replies in time;
the monitor's next try (after its backoff, half a second or more) confirms a real outage: an
unplugged port fails at once, a silent board within its request timeouts."""


@dataclass(slots=True)
class BankHealth:
    """What the door monitor knows about the door bank.

    Attributes:
        board_error: The last error of a failed poll, while the bank is not answering.
        failed_polls: Failed polls since the bank last answered.
        last_poll_ok_at: When a poll last succeeded.
        reconciled: False while boot reconciliation still waits for the bank to answer (a bank
            absent at boot); nothing is pulsed until it has run.
        wiring_hint: What boot reconciliation suspects when most doors read open at once (the
            lock-bit polarity or the sensor wiring), for the staff screen; None otherwise.
    """

    board_error: str | None = None
    failed_polls: int = 0
    last_poll_ok_at: datetime | None = None
    reconciled: bool = True
    wiring_hint: str | None = None

    @property
    def down(self) -> bool:
        """Whether the bank is known not to answer (`DOWN_AFTER_FAILED_POLLS` failed polls)."""
        return self.board_error is not None and self.failed_polls >= DOWN_AFTER_FAILED_POLLS

    @property
    def unavailable(self) -> str | None:
        """Why no door can be opened now, or None when the bank answers."""
        if self.down:
            return self.board_error
        if not self.reconciled:
            return "the door bank has not answered since the kiosk started"
        return None
