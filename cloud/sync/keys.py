"""Keys: the cloud's own signing key, and the registered kiosks whose messages it accepts.

A kiosk message is verified with the public key registered for its sender, and that kiosk must
belong to the location of the topic (``docs/protocol.md``, Envelope): one kiosk's key cannot
speak for another location. `KioskDirectory` answers that from PostgreSQL, with a short cache,
since `shared.protocol.open_message` asks synchronously.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud import errors
from cloud.store import kiosk_keys, kiosks
from cloud.store.database import Conn, Pool
from shared.protocol import KeyResolver
from shared.signing import Signer, SigningError, Verifier

log = logging.getLogger(__name__)


def load_cloud_signer(path: str | Path, *, create: bool) -> Signer:
    """The cloud's Ed25519 signing key from its PEM file.

    Args:
        path: The PEM file (PKCS#8).
        create: Generate the key (mode 0600) when the file does not exist: the demo and
            embedded mode. In production the key is made once and handed to the service.

    Raises:
        SigningError: the file is missing (and ``create`` is false), unreadable, or not an
            Ed25519 private key.
    """
    target = Path(path)
    if not target.exists():
        if not create:
            raise SigningError(f"the cloud's signing key {target} does not exist")
        signer = Signer.generate()
        target.parent.mkdir(parents=True, exist_ok=True)
        write_private(target, signer.private_pem())
        log.info("generated the cloud's signing key in %s", target)
        return signer
    return Signer.from_file(target)


def write_private(path: Path, data: bytes) -> None:
    """Writes a secret file readable by its owner only (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


async def register_kiosk(
    conn: Conn,
    *,
    kiosk_id: str,
    location_id: str,
    public_key: str,
    code_secret: bytes,
    now: datetime,
) -> kiosks.Kiosk:
    """Registers a kiosk's public key and code secret at a location.

    The location's row is locked, as the change log locks it, so ``registered_revision`` is
    exactly the last revision logged without this secret.

    Raises:
        LocationNotFound, AlreadyExists (the kiosk id is taken: give a replacement kiosk a new
        id), BadRequest (not an Ed25519 public key, or a secret under 16 bytes).
    """
    try:
        Verifier.from_base64(public_key)
    except SigningError as exc:
        raise errors.BadRequest(str(exc)) from None
    if len(code_secret) < 16:
        raise errors.BadRequest("a code secret has at least 16 bytes")
    return await kiosks.register(
        conn,
        kiosk_id=kiosk_id,
        location_id=location_id,
        public_key=public_key,
        code_secret=code_secret,
        now=now,
    )


async def location_code_secret(conn: Conn, location_id: str) -> bytes | None:
    """The code secret of the location's newest kiosk (each kiosk has its own, issue 9)."""
    return await kiosks.latest_code_secret(conn, location_id)


@dataclass(frozen=True, slots=True)
class KioskKey:
    kiosk_id: str
    location_id: str
    verifier: Verifier


class KeyRing(Verifier):
    """A kiosk's current key and the rotated-out ones still in their grace period: a message
    verifies if any of them signed it."""

    def __init__(self, current: Verifier, retired: tuple[Verifier, ...] = ()) -> None:
        self._ring = (current, *retired)

    def public_base64(self) -> str:
        return self._ring[0].public_base64()

    def verify(self, message: Mapping[str, Any]) -> None:
        for older in self._ring[1:]:
            try:
                older.verify(message)
            except SigningError:
                continue
            return
        self._ring[0].verify(message)  # its error is the one to report


REFRESH_AFTER_S = 5.0
"""A kiosk's keys are looked up again after a bad signature at most this often."""


class KioskDirectory:
    """Registered kiosks by id, cached for ``ttl`` seconds (unknown ids for a tenth of it).

    A revoked kiosk is unknown; a key past its grace period is gone (within ``ttl``).
    """

    def __init__(
        self,
        pool: Pool,
        ttl: float = 60.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh_after: float = REFRESH_AFTER_S,
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._refresh_after = refresh_after
        self._now = now
        self._cache: dict[str, tuple[float, KioskKey | None]] = {}

    async def lookup(self, kiosk_id: str) -> KioskKey | None:
        hit = self._cache.get(kiosk_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        registered = await kiosk_keys.accepted_keys(self._pool, kiosk_id, self._now())
        key = None
        if registered is not None:
            try:
                key = KioskKey(
                    registered.kiosk_id,
                    registered.location_id,
                    KeyRing(
                        Verifier.from_base64(registered.current),
                        tuple(Verifier.from_base64(k) for k in registered.retired),
                    ),
                )
            except SigningError:
                log.error("kiosk %s has an unusable public key registered", kiosk_id)
        if len(self._cache) > 100_000:  # bounded: forget everything rather than track LRU
            self._cache.clear()
        ttl = self._ttl if key is not None else self._ttl / 10
        self._cache[kiosk_id] = (time.monotonic() + ttl, key)
        return key

    def forget(self, kiosk_id: str) -> None:
        self._cache.pop(kiosk_id, None)

    def may_refresh(self, kiosk_id: str) -> bool:
        """Whether the kiosk's cached keys are old enough (`REFRESH_AFTER_S`) to be looked up
        again after a signature they did not verify (a key rotated on another worker)."""
        hit = self._cache.get(kiosk_id)
        if hit is None:
            return False
        fetched_at = hit[0] - (self._ttl if hit[1] is not None else self._ttl / 10)
        return time.monotonic() - fetched_at >= min(self._refresh_after, self._ttl)


def resolver_for(key: KioskKey | None) -> KeyResolver:
    """An `open_message` key resolver that knows one kiosk, and only at its own location."""

    def resolve(location_id: str, sender: str) -> Verifier | None:
        if key is None or sender != key.kiosk_id or location_id != key.location_id:
            return None
        return key.verifier

    return resolve
