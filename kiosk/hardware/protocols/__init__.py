"""Lock-control board protocols, and the registry that names them.

`eight_a` speaks the common "8A/80" boards, `kerong` the Kerong KR-CU16. Each module is a pure byte
codec (it encodes the requests the kiosk sends, decodes the replies, and also the reverse, so that
the simulator and property tests use the same definitions) plus the `BoardDialect` that drives that
codec over a serial link. `framing` finds frames in a byte stream.

Each protocol module registers itself, once, at its end::

    PROTOCOL = register_protocol(BoardProtocol(name="8a80", title="8A/80", ...))

and the configuration key ``doors.serial.protocol`` is looked up with `protocol_named`. Every
module of this package is imported on the first lookup, so adding a protocol is adding one module
here (and its tests); nothing else names it. An unknown name raises `UnknownProtocol`, which lists
the known ones: there is no default protocol to fall back to.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kiosk.hardware.protocols.dialect import BoardDialect
    from kiosk.hardware.protocols.framing import FrameSpec
    from kiosk.hardware.serial_board import SerialBankConfig
    from kiosk.hardware.serial_link import SerialLink


class UnknownProtocol(ValueError):
    """No registered protocol has the name; the message lists the names that are."""


@dataclass(frozen=True, eq=False, slots=True)
class BoardProtocol:
    """One lock-board protocol, as registered by its module.

    Instances are compared by identity: the registry holds exactly one per name.

    Attributes:
        name: The configuration name (``doors.serial.protocol``), lower case: ``8a80``.
        title: The name as field techs write it, for messages: ``8A/80``.
        baudrate: The line speed when the configuration gives none.
        first_board: The lowest board address.
        last_board: The highest board address.
        max_locks: Channels on the biggest board.
        validate_address: Raises ValueError for a (board, lock) the protocol cannot carry.
        request_frame: How the requests the kiosk sends are framed (for the simulator).
        dialect: Builds the `BoardDialect` that drives these boards over a link.
    """

    name: str
    title: str
    baudrate: int
    first_board: int
    last_board: int
    max_locks: int
    validate_address: Callable[[int, int], None]
    request_frame: FrameSpec[Any]
    dialect: Callable[[SerialLink, SerialBankConfig], BoardDialect]

    # The built-in protocols under their pre-registry names (set when this package is imported).
    EIGHT_A: ClassVar[BoardProtocol]
    KERONG: ClassVar[BoardProtocol]

    @property
    def value(self) -> str:
        """The configuration name (as the enum this class replaced spelled it)."""
        return self.name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"BoardProtocol({self.name!r})"

    @classmethod
    def parse(cls, value: str) -> BoardProtocol:
        """Reads a protocol name, case-insensitively.

        Raises:
            UnknownProtocol: as `protocol_named`.
        """
        return protocol_named(value)


_REGISTRY: dict[str, BoardProtocol] = {}
_discovered = False


def register_protocol(protocol: BoardProtocol) -> BoardProtocol:
    """Adds ``protocol`` to the registry and returns it (a protocol module calls this once).

    Raises:
        ValueError: the name is not lower case and stripped, or another protocol has it.
    """
    if not protocol.name or protocol.name != protocol.name.strip().lower():
        raise ValueError(f"protocol names are lower case, got {protocol.name!r}")
    if protocol.name in _REGISTRY and _REGISTRY[protocol.name] is not protocol:
        raise ValueError(f"a protocol named {protocol.name!r} is already registered")
    _REGISTRY[protocol.name] = protocol
    return protocol


def unregister_protocol(name: str) -> None:
    """Removes a protocol from the registry (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def protocol_named(name: str) -> BoardProtocol:
    """The registered protocol called ``name`` (case and surrounding spaces ignored).

    Raises:
        UnknownProtocol: no protocol has that name; the message lists the known names.
    """
    _discover()
    try:
        return _REGISTRY[name.strip().lower()]
    except KeyError:
        known = ", ".join(repr(known) for known in known_protocols())
        raise UnknownProtocol(
            f"unknown board protocol {name!r}; known protocols: {known}"
        ) from None


def known_protocols() -> tuple[str, ...]:
    """The names of every registered protocol, sorted."""
    _discover()
    return tuple(sorted(_REGISTRY))


def registered_protocols() -> tuple[BoardProtocol, ...]:
    """Every registered protocol, sorted by name."""
    return tuple(_REGISTRY[name] for name in known_protocols())


def _discover() -> None:
    # Importing a protocol module is what registers it; the codecs are pure Python, so importing
    # every module of the package is cheap and loads no hardware library.
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


from kiosk.hardware.protocols import eight_a, kerong  # noqa: E402  (they register themselves)

BoardProtocol.EIGHT_A = eight_a.PROTOCOL
BoardProtocol.KERONG = kerong.PROTOCOL

__all__ = [
    "BoardProtocol",
    "UnknownProtocol",
    "known_protocols",
    "protocol_named",
    "register_protocol",
    "registered_protocols",
    "unregister_protocol",
]
