"""Staff PINs and courier codes as they are kept: scrypt hashes, never the secret itself.

The cloud hashes a staff member's PIN (or a courier's code) the moment it is given, with the
location's salt (``locations.people_salt``, one per location), and only the hash and salt are
stored, logged in the change log and sent to the kiosk. The kiosk hashes what is typed with the
same salt and looks the hash up: with one salt per location that is one scrypt per attempt, so
sign-in costs the same however many people are provisioned (``bench/staff_sign_in_bench.py``).
One salt per location also lets the cloud refuse a second live person with the same PIN there,
which a per-person salt could not see.

scrypt (n=2**14, r=8, p=1: 16 MiB, tens of milliseconds here) makes an offline guess of a
stolen kiosk database cost that much per guess; the kiosk's lockout (`kiosk.flows.staff_sign_in`)
is what stops guessing at the screen.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1

PIN = re.compile(r"^[0-9]{4,12}$")
"""A staff PIN: 4 to 12 digits (the staff keypad's keys)."""

COURIER_CODE = re.compile(r"^[0-9]{8}$")
"""A courier code: 8 digits, drawn by the cloud."""

SALT = re.compile(r"^[0-9a-f]{32}$")
HASH = re.compile(r"^[0-9a-f]{64}$")


class CourierPermission(StrEnum):
    """What a courier may do at the kiosk."""

    DROP_OFF = "drop_off"
    COLLECT_EXPIRED = "collect_expired"  # take away the carrier's parcels past their window
    COLLECT_RETURNS = "collect_returns"  # take away customers' returns for the carrier


def new_salt() -> str:
    """A fresh salt, 16 random bytes as hex."""
    return secrets.token_hex(16)


def secret_hash(secret: str, salt: str) -> str:
    """The scrypt hash (hex) of a PIN or courier code under ``salt`` (hex)."""
    digest = hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return digest.hex()


def new_courier_code() -> str:
    """A random 8-digit courier code."""
    return f"{secrets.randbelow(10**8):08d}"
