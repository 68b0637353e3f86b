"""Keyed hashes of pickup and return codes: the only form in which the kiosk keeps a code.

A code is six characters from 31 symbols (about 887 million values), so a plain hash would fall
to a brute-force search in seconds if the SQLite file were copied off a kiosk. HMAC-SHA256 under
a per-kiosk secret (from configuration, never in the database) makes the file useless without
the secret. The secret's own fingerprint is kept, so a kiosk started with a different secret is
refused instead of silently rejecting every customer's code.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.codes import PickupCode, code_hash

MIN_SECRET_BYTES = 16
"""A shorter secret could be guessed along with the code."""


class CodeHasher:
    """Hashes codes under the kiosk's secret.

    Args:
        secret: The per-kiosk secret (at least 16 bytes; text is UTF-8 encoded).

    Raises:
        ValueError: on construction, for a secret shorter than 16 bytes.
    """

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"the code secret must be at least {MIN_SECRET_BYTES} bytes long")
        self._key = key

    def __repr__(self) -> str:
        return "CodeHasher(<secret>)"

    def hash(self, code: PickupCode) -> str:
        """The code's HMAC-SHA256, 64 hex digits (`shared.codes.code_hash`, as the cloud sends)."""
        return code_hash(self._key, code)

    def fingerprint(self) -> str:
        """Identifies the secret without revealing it (kept in the store to detect a change)."""
        return hmac.new(self._key, b"kiosk-code-secret-fingerprint", hashlib.sha256).hexdigest()


def code_reference(code_hash: str) -> str:
    """A short tag of a code hash for audit entries: enough to correlate attempts, no more."""
    return code_hash[:8]
