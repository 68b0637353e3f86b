"""Rotating kiosks' code secrets: on demand (``locker-cloud rotate-code-secret``) and due.

`rotate` asks each named kiosk for its next generation (`cloud.store.code_secrets`), each in a
transaction of its own that logs the ``code_secret_rotation`` change to the kiosk's location.
The schedule is ``LOCKER_CODE_SECRET_ROTATION_DAYS``: off (None) by default, so that a first
deployment does not rotate a whole fleet at once; once set, the lifecycle job asks each kiosk
whose newest generation is older (`rotate_due`), and retires the generations no live code needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from cloud.store import code_secrets
from cloud.store.code_secrets import RotationRequest
from cloud.store.database import Pool
from cloud.store.transaction import unit

log = logging.getLogger(__name__)


async def rotate(
    pool: Pool, kiosk_ids: Sequence[str], now: datetime, requested_by: str
) -> list[RotationRequest]:
    """Asks each kiosk for its next generation (a waiting request is logged again).

    Raises:
        LookupError: a kiosk is unknown or revoked (the kiosks before it are asked).
    """
    done: list[RotationRequest] = []
    for kiosk_id in kiosk_ids:
        async with pool.connection() as conn, unit(conn, now) as work:
            request = await code_secrets.request_rotation(conn, kiosk_id, now, requested_by)
            work.rotation_requested(request.location_id, code_secrets.change_entry(request))
        done.append(request)
    return done


async def rotate_due(pool: Pool, now: datetime, every: timedelta) -> list[RotationRequest]:
    """Asks every kiosk whose rotation is due (`cloud.store.code_secrets.due_kiosks`)."""
    async with pool.connection() as conn:
        due = await code_secrets.due_kiosks(conn, now, every)
    return await rotate(pool, due, now, "schedule")


async def retire_unneeded(pool: Pool, now: datetime) -> list[tuple[str, int]]:
    """Wipes the secrets of generations no live code needs any more."""
    async with pool.connection() as conn, conn.transaction():
        retired = await code_secrets.retire_unneeded(conn, now)
    for kiosk_id, generation in retired:
        log.info("retired generation %d of kiosk %s's code secret", generation, kiosk_id)
    return retired
