"""A kiosk's announcement of its next signing key, and the proof that it holds that key.

The kiosk makes its next Ed25519 key itself (`kiosk.sync.key_rotation`), so no private key ever
crosses the broker. It announces the public half as a ``signing_key_rotated`` event: the event
travels in an ``events`` message signed by the kiosk's *current* key (so only the holder of the
current key can announce a successor), and carries ``proof``, the *new* key's signature of
`announcement` (so a kiosk cannot announce a key it does not hold, e.g. another kiosk's).
"""

from __future__ import annotations

from typing import Any

from shared.signing import Signer, Verifier

PURPOSE = "locker-signing-key-rotation/v1"


def announcement(kiosk_id: str, new_public_key: str) -> dict[str, Any]:
    """What the new key signs: bound to the kiosk, so a proof cannot be reused elsewhere."""
    return {"purpose": PURPOSE, "kiosk_id": kiosk_id, "new_public_key": new_public_key}


def prove(new_key: Signer, kiosk_id: str) -> str:
    """The ``proof`` of a ``signing_key_rotated`` event for ``new_key``."""
    return new_key.sign(announcement(kiosk_id, new_key.verifier.public_base64()))


def check_proof(kiosk_id: str, new_public_key: str, proof: str) -> None:
    """Raises SigningError unless ``proof`` is ``new_public_key``'s signature of the
    announcement (a key that is not an Ed25519 public key is refused the same way)."""
    verifier = Verifier.from_base64(new_public_key)
    verifier.verify({**announcement(kiosk_id, new_public_key), "sig": proof})
