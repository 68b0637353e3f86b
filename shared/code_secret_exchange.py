"""Rotating a kiosk's code secret without sending it: an X25519 exchange per generation.

A kiosk's code secret is the key of its pickup codes' keyed hashes (`shared.codes.code_hash`).
Rotation (issue 9, ``docs/security.md``) makes a new **generation** of it; old generations stay
in use for the codes issued under them until the last of those codes ends.

Why an exchange and not a derivation from the current secret: whoever copied a kiosk's SD card
holds its current secret and its broker certificate, so he can read the location's cloud topic
too; a generation derived from the old secret and a nonce sent there would be his as well.
With X25519 the cloud sends only its public half (in the change log), the kiosk answers with
its public half (a signed ``code_secret_rotated`` event), and each side computes the shared
secret from its own private half, which never leaves it. Neither the secret nor anything it can
be computed from crosses the broker, and a copy of the card made before the rotation is of no
use for codes issued after it. The kiosk forgets its private half at once; the cloud forgets
its own once the kiosk has answered.

Both sides end with `generation_secret`, then prove they agree by the secret's fingerprint
(`secret_fingerprint`), which the kiosk sends and the cloud checks before using the secret.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_BYTES = 32
_INFO = b"locker code secret generation|"


def secret_fingerprint(secret: bytes) -> str:
    """Identifies a code secret without revealing it (64 hex digits; the kiosk store's formula)."""
    return hmac.new(secret, b"kiosk-code-secret-fingerprint", hashlib.sha256).hexdigest()


def new_half() -> tuple[X25519PrivateKey, bytes]:
    """A fresh private half and its public half (32 raw bytes)."""
    private = X25519PrivateKey.generate()
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def private_bytes(private: X25519PrivateKey) -> bytes:
    """The private half's 32 raw bytes (the cloud keeps them until the kiosk answers)."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def generation_secret(
    private: X25519PrivateKey | bytes, peer_public: bytes, kiosk_id: str, generation: int
) -> bytes:
    """The generation's code secret, as either side computes it from its private half.

    Bound to the kiosk and generation (HKDF's info), so one exchange cannot be replayed as
    another kiosk's or another generation's.

    Raises:
        ValueError: ``peer_public`` is not a valid X25519 public key (32 bytes).
    """
    if isinstance(private, bytes):
        private = X25519PrivateKey.from_private_bytes(private)
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    info = _INFO + kiosk_id.encode() + b"|" + str(generation).encode()
    return HKDF(algorithm=hashes.SHA256(), length=SECRET_BYTES, salt=None, info=info).derive(shared)
