"""Ed25519 signatures over canonical JSON: how the cloud and each kiosk prove who sent a message.

A message is a JSON object; its signature covers the **canonical JSON** of the object without its
``sig`` field: keys sorted, separators ``,`` and ``:``, UTF-8, no whitespace. Both sides compute
the same bytes from the same object, whatever order the fields arrived in.

Keys are kept as PEM files (PKCS#8 private, SubjectPublicKeyInfo public), as ``cryptography`` and
OpenSSL write them, and travel in configuration as the raw 32-byte public key in base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FIELD = "sig"


class SigningError(ValueError):
    """A key that cannot be loaded, or a signature that does not verify."""


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bytes(message: Mapping[str, Any]) -> bytes:
    """The canonical JSON of ``message`` without its signature field."""
    return canonical_json({k: v for k, v in message.items() if k != SIGNATURE_FIELD})


class Signer:
    """Signs messages with a private key.

    Args:
        key: The Ed25519 private key.
    """

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> Signer:
        """A signer with a fresh key (provisioning and tests)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        """Loads a PKCS#8 PEM private key.

        Raises:
            SigningError: not an unencrypted Ed25519 private key.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as error:
            raise SigningError(f"not a usable private key: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningError("the private key is not an Ed25519 key")
        return cls(key)

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        """Loads the private key PEM at ``path``.

        Raises:
            SigningError: the file cannot be read or holds no Ed25519 private key.
        """
        try:
            pem = Path(path).read_bytes()
        except OSError as error:
            raise SigningError(f"cannot read private key {path}: {error}") from None
        return cls.from_pem(pem)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (write it with mode 0600)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def verifier(self) -> Verifier:
        return Verifier(self._key.public_key())

    def sign(self, message: Mapping[str, Any]) -> str:
        """The base64 signature of ``message`` (its ``sig`` field, if any, is ignored)."""
        return base64.b64encode(self._key.sign(signed_bytes(message))).decode()

    def seal(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``message`` with its signature in ``sig``."""
        return {**message, SIGNATURE_FIELD: self.sign(message)}


class Verifier:
    """Checks signatures with a public key.

    Args:
        key: The Ed25519 public key.
    """

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    @classmethod
    def from_base64(cls, text: str) -> Verifier:
        """Loads a raw 32-byte public key given in base64 (as configuration carries it).

        Raises:
            SigningError: not base64 of 32 bytes.
        """
        try:
            raw = base64.b64decode(text, validate=True)
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError) as error:
            raise SigningError(f"not an Ed25519 public key in base64: {error}") from None

    def public_base64(self) -> str:
        """The raw public key in base64."""
        raw = self._key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def verify(self, message: Mapping[str, Any]) -> None:
        """Checks ``message['sig']`` over the rest of the message.

        Raises:
            SigningError: no signature, a malformed one, or one that does not verify.
        """
        signature = message.get(SIGNATURE_FIELD)
        if not isinstance(signature, str) or not signature:
            raise SigningError("the message is not signed")
        try:
            raw = base64.b64decode(signature, validate=True)
        except binascii.Error:
            raise SigningError("the signature is not base64") from None
        try:
            self._key.verify(raw, signed_bytes(message))
        except InvalidSignature:
            raise SigningError("the signature does not verify") from None
