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

Shown status (`PresenceRule`): ``never_seen`` (no birth yet), ``online``, ``stale`` (silent for
longer than two heartbeats, or dead for less than the outage threshold), or ``offline`` (an
outage confirmed: silent or dead for the threshold, 5 minutes by default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cloud.config import CloudSettings
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


@dataclass(frozen=True, slots=True)
class PresenceRule:
    """How long a silent kiosk stays ``online``, then ``stale``, before it is ``offline``.

    Brief drops are not outages: a kiosk that misses two heartbeats is ``stale``, and it becomes
    ``offline`` only once the outage is confirmed, silent (or dead, its MQTT will received) for
    ``offline_after``. A router rebooting or a broker restart gives a few stale seconds, not an
    offline alert at 3 a.m.
    """

    stale_after: timedelta
    offline_after: timedelta

    @classmethod
    def of(cls, settings: CloudSettings) -> PresenceRule:
        return cls(
            stale_after=timedelta(seconds=settings.kiosk_stale_after_seconds),
            offline_after=timedelta(seconds=settings.kiosk_offline_after_seconds),
        )

    def shown_status(self, kiosk: KioskPresence, now: datetime) -> str:
        """``online``, ``stale``, ``offline`` or ``never_seen``."""
        if kiosk.status == "never_seen":
            return "never_seen"
        heard = [t for t in (kiosk.heartbeat_at, kiosk.birth_at) if t is not None]
        if kiosk.status == "offline":
            # Down since its will (or since last heard, for a death without a time).
            since = kiosk.death_at or max(heard, default=now)
            return "offline" if now - since >= self.offline_after else "stale"
        silent = now - max(heard, default=now)
        if silent >= self.offline_after:
            return "offline"
        return "stale" if silent > self.stale_after else "online"

    def shown(self, kiosk: KioskPresence, now: datetime) -> KioskPresence:
        return replace(kiosk, status=self.shown_status(kiosk, now))


async def location_kiosks(
    conn: Conn, location_id: str, now: datetime, rule: PresenceRule
) -> list[KioskPresence]:
    """The location's kiosks with their presence, as the admin API shows them.

    Each record's ``status`` is the shown one (`PresenceRule.shown_status`), not the stored one.
    """
    return [rule.shown(kiosk, now) for kiosk in await kiosks.location_presence(conn, location_id)]


_RANK = {"online": 0, "stale": 1, "offline": 2, "never_seen": 3}


def summary_status(shown: list[KioskPresence]) -> str:
    """The location's status: that of its best kiosk (``never_seen`` without any).

    Args:
        shown: The kiosks as `location_kiosks` gives them (with their shown status).
    """
    return min((k.status for k in shown), key=_RANK.__getitem__, default="never_seen")
