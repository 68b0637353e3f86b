"""Generations of the kiosk's code secret: making one, checking a code under each, retiring one.

Generation 1 is the provisioned secret (configuration, `Store.hasher`); each later generation is
made here when the cloud asks (a ``code_secret_rotation`` change, `shared.code_secret_exchange`)
and kept in ``code_secret_generations``. A code keeps the generation it was issued under for its
whole life, so a rotation never stops a live code from opening its door: a typed code is hashed
under every generation still in use (`hashes_of`), and a generation is retired (its secret
wiped, `retire_unneeded`) once no live code is hashed under it. The newest generation is never
retired: the cloud issues new codes under it.

The store's identity check (``code_secret_fingerprint`` in ``kiosk_meta``) stays about
generation 1, the secret configuration gives; the fingerprint of each later generation is kept
in its row, and sent to the cloud, which checks it against its own computation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from kiosk.store import audit, outbox
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import Store, require_transaction
from kiosk.store.records import Actor, to_db_time
from shared import code_secret_exchange
from shared.codes import PickupCode
from shared.events import CodeSecretRotated
from shared.states import LIVE_ALLOCATION_STATUSES

log = logging.getLogger(__name__)

PROVISIONED = 1
"""The generation of the secret configuration gives."""


@dataclass(frozen=True, slots=True)
class Generation:
    """One generation still in use: its number and the hasher of its secret."""

    generation: int
    hasher: CodeHasher


def live_generations(store: Store) -> list[Generation]:
    """The generations codes may be hashed under, newest first (generation 1 unless retired)."""
    found: list[Generation] = []
    retired_provisioned = False
    for row in store.db.query(
        "SELECT generation, secret, retired_at FROM code_secret_generations"
        " ORDER BY generation DESC"
    ):
        if row["generation"] == PROVISIONED:
            retired_provisioned = row["retired_at"] is not None
        elif row["retired_at"] is None and row["secret"] is not None:
            found.append(Generation(row["generation"], CodeHasher(bytes(row["secret"]))))
    if not retired_provisioned:
        found.append(Generation(PROVISIONED, store.hasher))
    return found


def newest_generation(db: Database) -> int:
    """The newest generation made (1 before any rotation)."""
    row = next(db.query("SELECT max(generation) AS g FROM code_secret_generations"))
    return int(row["g"] or PROVISIONED)


def hashes_of(store: Store, code: PickupCode) -> list[str]:
    """The code's hash under every generation in use, newest first (what to look it up by)."""
    return [g.hasher.hash(code) for g in live_generations(store)]


def fingerprints(db: Database) -> dict[int, str]:
    """The fingerprint of each generation made here (generation 1's is in ``kiosk_meta``)."""
    return {
        int(row["generation"]): str(row["fingerprint"])
        for row in db.query(
            "SELECT generation, fingerprint FROM code_secret_generations WHERE generation > 1"
        )
    }


def make_generation(
    store: Store, kiosk_id: str, generation: int, cloud_public: bytes, now: datetime
) -> bool:
    """Makes ``generation`` from the cloud's public half, keeps it, and tells the cloud.

    A generation already made (the request sent again) changes nothing: its private half is
    gone, and the cloud already has, or will get, the event the outbox holds. A request for a
    kiosk other than this one changes nothing either.

    Returns:
        Whether a generation was made.

    Raises:
        ValueError: ``cloud_public`` is not an X25519 public key.
    """
    if kiosk_id != store.identity.kiosk_id:
        return False
    with store.transaction() as db:
        if generation <= newest_generation(db):
            return False
        private, kiosk_public = code_secret_exchange.new_half()
        secret = code_secret_exchange.generation_secret(private, cloud_public, kiosk_id, generation)
        del private  # never stored: nothing on the card gives this generation again
        fingerprint = code_secret_exchange.secret_fingerprint(secret)
        db.execute(
            "INSERT INTO code_secret_generations (generation, secret, fingerprint, created_at)"
            " VALUES (?, ?, ?, ?)",
            [generation, secret, fingerprint, to_db_time(now)],
        )
        outbox.append_event(
            db,
            CodeSecretRotated(
                generation=generation, kiosk_public=kiosk_public.hex(), fingerprint=fingerprint
            ),
            now,
        )
        audit.record_entry(
            db,
            now,
            Actor.REMOTE,
            "code_secret_rotated",
            "made",
            detail={"generation": generation, "fingerprint": fingerprint[:8]},
        )
    log.info("made generation %d of the code secret", generation)
    return True


def retire_unneeded(db: Database, now: datetime) -> list[int]:
    """Retires every generation but the newest that no live code is hashed under.

    A code is live while it is unused and a live allocation (reserved, deposited, expired)
    holds it. Generation 1's secret stays in configuration; retiring it only stops codes being
    checked under it.

    Returns:
        The generations retired now.

    Raises:
        NotInTransaction: called outside `Store.transaction`.
    """
    require_transaction(db)
    newest = newest_generation(db)
    if newest == PROVISIONED:
        return []
    live = sorted(s.value for s in LIVE_ALLOCATION_STATUSES)
    marks = ", ".join("?" for _ in live)
    needed = {
        int(row["generation"])
        for row in db.query(
            "SELECT DISTINCT c.generation FROM codes c JOIN allocations a ON a.code_id = c.code_id"
            f" WHERE c.used_at IS NULL AND a.status IN ({marks})",
            live,
        )
    }
    retired: list[int] = []
    db.execute(
        "INSERT OR IGNORE INTO code_secret_generations (generation, created_at) VALUES (1, ?)",
        [to_db_time(now)],
    )
    for row in list(
        db.query(
            "SELECT generation FROM code_secret_generations"
            " WHERE retired_at IS NULL AND generation < ? ORDER BY generation",
            [newest],
        )
    ):
        generation = int(row["generation"])
        if generation in needed:
            continue
        db.execute(
            "UPDATE code_secret_generations SET secret = NULL, retired_at = ? WHERE generation = ?",
            [to_db_time(now), generation],
        )
        retired.append(generation)
    for generation in retired:
        audit.record_entry(
            db,
            now,
            Actor.KIOSK,
            "code_secret_retired",
            "retired",
            detail={"generation": generation},
        )
        log.info("retired generation %d of the code secret: no live code uses it", generation)
    return retired
