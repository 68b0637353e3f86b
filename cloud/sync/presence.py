"""Presence: births, deaths and heartbeats of the kiosks, and how the API shows them.

Epochs make presence order-proof (``docs/protocol.md``): each connection of a kiosk has a
higher epoch than the one before.

- A ``birth`` of a newer epoch marks the kiosk online; one of the current epoch is a duplicate
  and changes nothing once that connection has died.
- A ``death`` (the MQTT will) marks the kiosk offline only when its epoch is the latest known:
  a late will of an older connection does not mark a live kiosk dead. A death of a newer epoch
  than any birth seen (the birth was lost) still marks it offline.
- A ``heartbeat`` keeps the last figures; one of a newer epoch (its birth lost or late) also
  marks the kiosk online at that epoch; one of an older epoch, or of a connection that has died,
  is ignored.

Shown status: ``never_seen`` (no birth yet), ``offline``, ``online``, or ``stale`` (online but
silent for longer than the configured interval).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from cloud.store import kiosks
from cloud.store.database import Conn, Pool
from cloud.store.kiosks import KioskPresence
from shared.protocol import BirthBody, DeathBody, HeartbeatBody


async def record_birth(pool: Pool, body: BirthBody, now: datetime) -> bool:
    """Marks the kiosk online at the birth's epoch. Returns whether anything changed."""
    return await kiosks.mark_born(
        pool,
        kiosk_id=body.kiosk_id,
        epoch=body.epoch,
        firmware=body.firmware,
        last_revision=body.last_revision,
        now=now,
    )


async def record_death(pool: Pool, body: DeathBody, now: datetime) -> bool:
    """Marks the kiosk offline if the death is of its latest connection."""
    return await kiosks.mark_dead(pool, kiosk_id=body.kiosk_id, epoch=body.epoch, now=now)


async def record_heartbeat(pool: Pool, body: HeartbeatBody, now: datetime) -> int | None:
    """Keeps the heartbeat's figures, unless it is of an older or a dead connection.

    Returns:
        The location's change-log revision when the heartbeat was kept (read in the same
        statement, so checking whether the kiosk is behind costs no extra round trip), or None
        when it was ignored.
    """
    figures = body.model_dump(mode="json", exclude={"kiosk_id", "epoch"})
    return await kiosks.keep_heartbeat(
        pool,
        kiosk_id=body.kiosk_id,
        epoch=body.epoch,
        figures=figures,
        last_revision=body.last_revision,
        now=now,
    )


def shown_status(kiosk: KioskPresence, now: datetime, stale_after: timedelta) -> str:
    """``online``, ``stale``, ``offline`` or ``never_seen``."""
    if kiosk.status != "online":
        return kiosk.status
    last_heard = max(t for t in (kiosk.heartbeat_at, kiosk.birth_at) if t is not None)
    return "stale" if now - last_heard > stale_after else "online"


async def location_kiosks(
    conn: Conn, location_id: str, now: datetime, stale_after: timedelta
) -> list[KioskPresence]:
    """The location's kiosks with their presence, as the admin API shows them.

    Each record's ``status`` is the shown one (`shown_status`), not the stored one.
    """
    return [
        replace(kiosk, status=shown_status(kiosk, now, stale_after))
        for kiosk in await kiosks.location_presence(conn, location_id)
    ]


_RANK = {"online": 0, "stale": 1, "offline": 2, "never_seen": 3}


def summary_status(shown: list[KioskPresence]) -> str:
    """The location's status: that of its best kiosk (``never_seen`` without any).

    Args:
        shown: The kiosks as `location_kiosks` gives them (with their shown status).
    """
    return min((k.status for k in shown), key=_RANK.__getitem__, default="never_seen")
