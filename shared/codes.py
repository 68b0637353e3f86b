"""Pickup and return codes: what a customer types at the kiosk.

Six characters from an alphabet without look-alikes (no O/0, no I/1, and no L
either, which reads as 1 on many touchscreens). 31 symbols give 31**6, about
887 million codes per location, so a guessed code is worthless given the kiosk's
brute-force guard. Codes come from `secrets`, never `random`.

Uniqueness among live codes is the store's job (a unique index in the cloud);
`generate_code` only draws.

A code never crosses the broker in plaintext: the cloud sends `code_hash`, the HMAC-SHA256 of the
code under the kiosk's code secret, and the kiosk keeps only that hash. Both sides compute it
with the one function here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


class InvalidCode(ValueError):
    code = "invalid_code"


def generate_code() -> str:
    """A fresh random code. Not checked against live codes: the caller's store does that."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """Upper-cases and strips spaces and dashes, as a person may type ``ab3-k7x``.

    Raises:
        InvalidCode: the result is not six characters of the code alphabet. Look-alike
            characters (O, I, L, 0, 1) are rejected, never silently mapped, so that a
            code is never matched by a string the customer did not enter.
    """
    text = raw.strip().upper().replace(" ", "").replace("-", "")
    if len(text) != CODE_LENGTH:
        raise InvalidCode(f"a code has {CODE_LENGTH} characters, got {len(text)}")
    bad = sorted({ch for ch in text if ch not in CODE_ALPHABET})
    if bad:
        hint = " (codes never contain O, 0, I, L or 1)" if any(ch in "OIL01" for ch in bad) else ""
        raise InvalidCode(f"a code cannot contain {''.join(bad)}{hint}")
    return text


@dataclass(frozen=True, slots=True)
class PickupCode:
    """A validated code. Construct with `PickupCode.parse` from user input."""

    value: str

    def __post_init__(self) -> None:
        if normalize_code(self.value) != self.value:
            raise InvalidCode(f"{self.value!r} is not a normalized code")

    @classmethod
    def parse(cls, raw: str) -> PickupCode:
        return cls(normalize_code(raw))

    @classmethod
    def generate(cls) -> PickupCode:
        return cls(generate_code())

    def __str__(self) -> str:
        return self.value


def code_hash(secret: bytes, code: PickupCode) -> str:
    """The code's keyed hash under a kiosk's code secret: HMAC-SHA256, 64 lowercase hex digits.

    What the kiosk stores instead of the code, and what the cloud sends in a change
    (``docs/protocol.md``). The ``code:`` prefix keeps these hashes apart from any other use of
    the secret (its fingerprint).
    """
    return hmac.new(secret, b"code:" + code.value.encode(), hashlib.sha256).hexdigest()
