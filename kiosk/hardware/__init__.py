"""Door hardware: the door bank interface, its backends, lock-board protocols, the scanner.

Importing this package imports no hardware library: pyserial and gpiozero are loaded by the
backend that needs them, when it is built. See ``docs/hardware.md``.
"""

from kiosk.hardware.backends import (
    Backend,
    UnknownBackend,
    backend_named,
    known_backends,
    register_backend,
)
from kiosk.hardware.config import (
    DoorBankConfig,
    HardwareConfigError,
    create_door_bank,
    create_scanner,
    parse_door_bank_config,
    parse_scanner_config,
)
from kiosk.hardware.door_bank import (
    DoorBank,
    DoorChange,
    DoorState,
    LockState,
    UnlockOutcome,
    UnlockResult,
    UnlockTiming,
)
from kiosk.hardware.door_map import DoorMap, LockAddress
from kiosk.hardware.errors import (
    BoardTimeout,
    ChecksumError,
    LockBoardError,
    MalformedFrame,
    PortError,
    UnknownDoor,
)

__all__ = [
    "Backend",
    "BoardTimeout",
    "ChecksumError",
    "DoorBank",
    "DoorBankConfig",
    "DoorChange",
    "DoorMap",
    "DoorState",
    "HardwareConfigError",
    "LockAddress",
    "LockBoardError",
    "LockState",
    "MalformedFrame",
    "PortError",
    "UnknownBackend",
    "UnknownDoor",
    "UnlockOutcome",
    "UnlockResult",
    "UnlockTiming",
    "backend_named",
    "create_door_bank",
    "create_scanner",
    "known_backends",
    "parse_door_bank_config",
    "parse_scanner_config",
    "register_backend",
]
