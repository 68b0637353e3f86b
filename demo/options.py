"""What ``locker-demo`` was asked for, and the error it stops with when a part cannot start."""

from __future__ import annotations

from dataclasses import dataclass

CLOSE_AFTER_S = 2.0
"""How long the simulated person leaves a door open before shutting it."""


class DemoError(RuntimeError):
    """The demo cannot start; the message says why, on one line."""


@dataclass
class DemoOptions:
    """What ``locker-demo`` was asked for.

    Attributes:
        port: The API's port (a free one when taken; 0 for any).
        database_url: An existing, empty PostgreSQL; None for an embedded one.
        mqtt_url: An existing broker; None for the embedded one.
        headless: No kiosk UI in the terminal (also what happens without a terminal).
        exit_after_seed: Stop once ready (for scripts).
        close_after_s: Seconds before the simulated person shuts an open door.
    """

    port: int = 8080
    database_url: str | None = None
    mqtt_url: str | None = None
    headless: bool = False
    exit_after_seed: bool = False
    close_after_s: float = CLOSE_AFTER_S
