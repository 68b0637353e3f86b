"""Messages that reach the UI from outside it (the daemon's scanner loop, timers)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class Scanned(Message):
    """A line read by the scanner: a pickup code (QR) or a parcel barcode."""

    line: str


@dataclass
class KeyPressed(Message):
    """A key of an on-screen keypad: a character, ``back``, ``clear`` or ``ok``."""

    key: str
