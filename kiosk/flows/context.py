"""What every kiosk flow works with: the store, the door bank, the clock and the rules.

Flows are plain functions over a `FlowContext`, so tests build one from an in-memory store and a
fake or simulated door bank, and the daemon builds one from its configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from kiosk.bank_health import BankHealth
from kiosk.hardware.door_bank import DoorBank
from kiosk.store.database import Store
from shared.clock import Clock, SystemClock


@dataclass(frozen=True, slots=True)
class FlowRules:
    """The kiosk's rules, with the defaults a carrier would expect.

    Attributes:
        keypad_max_failures: Wrong codes allowed within ``keypad_window`` before the keypad
            locks (the fifth wrong code locks it).
        keypad_window: How far back wrong codes count.
        keypad_lockout: How long the keypad stays locked.
        pickup_window: How long a deposited parcel waits for its customer, when the cloud has
            not said (the cloud's value always wins).
        left_open_after: How long a door may stay open before an alert is raised.
        abandon_after: How long an operation whose door never opened keeps its door before it
            is given up (the customer walked away from "door did not open").

    Raises:
        ValueError: on construction, for a non-positive count or duration.
    """

    keypad_max_failures: int = 5
    keypad_window: timedelta = timedelta(minutes=1)
    keypad_lockout: timedelta = timedelta(minutes=1)
    pickup_window: timedelta = timedelta(days=3)
    left_open_after: timedelta = timedelta(minutes=2)
    abandon_after: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.keypad_max_failures < 1:
            raise ValueError("keypad_max_failures must be at least 1")
        for name in (
            "keypad_window",
            "keypad_lockout",
            "pickup_window",
            "left_open_after",
            "abandon_after",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True, slots=True)
class FlowContext:
    """The kiosk's store, door bank, clock and rules, as one argument for every flow.

    ``bank_health`` is what the door monitor knows about the bank (healthy unless a monitor
    says otherwise); flows refuse to commit to a door while it says the bank is unavailable.
    """

    store: Store
    bank: DoorBank
    clock: Clock = field(default_factory=SystemClock)
    rules: FlowRules = field(default_factory=FlowRules)
    bank_health: BankHealth = field(default_factory=BankHealth)
