"""Errors of the door-hardware layer.

Library errors (pyserial's ``SerialException``, a malformed reply) are turned into these few
domain errors at the edge, so the kiosk's flows handle one family: `LockBoardError` and its
subclasses for anything a lock-control board or its bus did, and `UnknownDoor` for a door number
that the configuration does not know.
"""

from __future__ import annotations


class LockBoardError(Exception):
    """A lock-control board or its bus failed: no answer, or bytes that cannot be trusted.

    After a `LockBoardError` from an unlock, the door may or may not have moved (the board may
    have pulsed and only its reply been lost); the door watch reports what the sensor sees.
    """


class ChecksumError(LockBoardError):
    """A frame's checksum byte does not match its contents (line noise, a bus collision)."""

    def __init__(self, message: str, frame: bytes = b"") -> None:
        super().__init__(message)
        self.frame = frame


class MalformedFrame(LockBoardError):
    """Bytes that are not a valid frame of the protocol: wrong length, head, command or field."""

    def __init__(self, message: str, frame: bytes = b"") -> None:
        super().__init__(message)
        self.frame = frame


class BoardTimeout(LockBoardError):
    """A board did not answer within the request timeout, on every attempt."""


class PortError(LockBoardError):
    """The serial port itself failed: missing device, unplugged adapter, permission denied."""


class UnknownDoor(ValueError):
    """A door number that is not in the door bank's configuration."""

    def __init__(self, door: int, known: tuple[int, ...] = ()) -> None:
        span = f"; configured doors are {known[0]}..{known[-1]}" if known else ""
        super().__init__(f"door {door} is not configured{span}")
        self.door = door
