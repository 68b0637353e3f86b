"""Lock-control board protocols as pure byte codecs (no IO).

`eight_a` speaks the common "8A/80" boards, `kerong` the Kerong KR-CU16. Each module encodes the
requests the kiosk sends, decodes the replies, and also does the reverse (decodes requests, encodes
replies) so that the simulator and property tests can use the same definitions. `framing` finds
frames in a byte stream.
"""

from __future__ import annotations

from enum import StrEnum


class BoardProtocol(StrEnum):
    """Which protocol the lock-control boards on a bus speak (configuration key ``protocol``)."""

    EIGHT_A = "8a80"
    KERONG = "kerong"

    @classmethod
    def parse(cls, value: str) -> BoardProtocol:
        """Reads a protocol name, case-insensitively.

        Raises:
            ValueError: not one of ``8a80`` or ``kerong``.
        """
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(repr(p.value) for p in cls)
            raise ValueError(f"unknown board protocol {value!r}; expected one of {names}") from None
