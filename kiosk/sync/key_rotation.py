"""The kiosk's signing key rotated over the air (issue 9): the kiosk makes its next key itself.

On the cloud's ``rotate_key`` command (sent at the kiosk's heartbeats while a rotation is due,
`cloud.sync.key_rotation`):

1. `begin` generates an Ed25519 key, writes it beside the current one as
   ``<sync.private_key_file>.next`` (mode 0600), and commits a ``signing_key_rotated`` outbox
   event carrying its public half and the new key's proof (`shared.key_rotation`) together with
   a note in ``kiosk_meta`` of the event's sequence. The private key never leaves the kiosk.
2. The event goes out like any other, in an ``events`` message signed by the **current** key:
   the cloud accepts the announcement only from the holder of the current key.
3. When the cloud's ``ack`` covers that sequence, the cloud has made the new key the kiosk's
   (and accepts the old one for its grace period): `finish_if_acknowledged` moves the ``.next``
   file over the key file (one atomic rename) and the client signs with the new key from then.

Until the ack the kiosk keeps signing with the current key, so it never sends a message the
cloud cannot verify. A restart in between resumes: the note and the ``.next`` file are durable,
and `finish_if_acknowledged` runs when sync starts. A second ``rotate_key`` while one is pending
changes nothing (the pending announcement is still on its way).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kiosk.store import meta, outbox
from kiosk.store.database import Store
from shared.events import SigningKeyRotated
from shared.key_rotation import prove
from shared.signing import Signer

log = logging.getLogger(__name__)

PENDING_KEY = "signing_key_next"
"""``kiosk_meta`` key: the pending rotation as JSON ``{"sequence", "public_key"}`` ("" for none)."""


@dataclass(frozen=True, slots=True)
class PendingRotation:
    sequence: int
    public_key: str


def next_key_file(key_file: Path) -> Path:
    """Where the next key waits for the cloud's ack: beside the current one."""
    return key_file.with_name(key_file.name + ".next")


def pending(store: Store) -> PendingRotation | None:
    """The rotation announced and not yet finished, if any."""
    raw = meta.get_value(store.db, PENDING_KEY)
    if not raw:
        return None
    note = json.loads(raw)
    return PendingRotation(int(note["sequence"]), str(note["public_key"]))


def begin(store: Store, key_file: Path, kiosk_id: str, now: datetime) -> str | None:
    """Makes the next key and commits its announcement; returns its public key (base64).

    Returns None, doing nothing, when a rotation is already pending.

    Raises:
        OSError: the key could not be written (nothing is announced).
    """
    if pending(store) is not None:
        return None
    signer = Signer.generate()
    public_key = signer.verifier.public_base64()
    # The file first: an announcement must never name a key the kiosk does not hold. A crash
    # after the write and before the commit leaves a stray .next, overwritten next time.
    _write_private(next_key_file(key_file), signer.private_pem())
    with store.transaction() as db:
        event = outbox.append_event(
            db, SigningKeyRotated(new_public_key=public_key, proof=prove(signer, kiosk_id)), now
        )
        meta.set_value(
            db, PENDING_KEY, json.dumps({"sequence": event.sequence, "public_key": public_key})
        )
    log.info("made the next signing key %s; announced as event %d", public_key, event.sequence)
    return public_key


def finish_if_acknowledged(store: Store, key_file: Path) -> Signer | None:
    """Switches to the next key once the cloud acknowledged its announcement.

    Returns:
        The new signer when the switch happened now, else None (nothing pending, or not yet
        acknowledged, or the pending key is lost: then logged, and the current key stays).
    """
    rotation = pending(store)
    if rotation is None or not _acknowledged(store, rotation.sequence):
        return None
    waiting = next_key_file(key_file)
    if waiting.exists():
        if Signer.from_file(waiting).verifier.public_base64() != rotation.public_key:
            log.error("%s is not the key announced (%s): not used", waiting, rotation.public_key)
            return None
        os.replace(waiting, key_file)  # atomic: the key file is always one whole key
    signer = Signer.from_file(key_file)
    if signer.verifier.public_base64() != rotation.public_key:
        # The announced key was lost (its file removed by hand): the cloud accepts the current
        # key only during its grace period; staff must re-key the kiosk (docs/security.md).
        log.error(
            "the signing key announced (%s) is lost; the cloud accepts %s only for its grace",
            rotation.public_key,
            signer.verifier.public_base64(),
        )
        return None
    with store.transaction() as db:
        meta.set_value(db, PENDING_KEY, "")
    log.info("signing with the new key %s from now on", rotation.public_key)
    return signer


def _acknowledged(store: Store, sequence: int) -> bool:
    row = store.db.execute("SELECT acked FROM outbox WHERE sequence = ?", [sequence]).fetchone()
    # Only acknowledged events are ever pruned, so a missing row was acknowledged.
    return row is None or bool(row[0])


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
