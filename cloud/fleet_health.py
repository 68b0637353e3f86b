"""Fleet health: the alerts with a start and an end that the cloud keeps by itself.

- ``kiosk_offline``: raised once a kiosk's outage is confirmed (`cloud.sync.presence`: silent or
  dead for ``LOCKER_KIOSK_OFFLINE_AFTER_SECONDS``, so a 30 s drop raises nothing), ended when it
  is heard from again.
- ``keypad_locked`` (raised by the kiosk's event) ends at the lockout's end;
  ``door_left_open`` ends when the kiosk reports the door shut, and ``door_bank_unavailable``
  (its lock boards stopped answering) when it reports them answering again
  (``door_bank_restored``; `cloud.sync.facts`).
- Tamper, security and the other event alerts end when an operator clears them, saying what was
  found (the console, `cloud.ops.actions`): a door forced open is not over because it shut.

Every alert is a ``fleet_alerts`` row (start ``raised_at``, end ``resolved_at``, location); the
metrics expose the open ones by kind and location, and deploy/prometheus's rules fire on them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from cloud.store import fleet_health as store
from cloud.store.database import Pool
from cloud.sync.presence import PresenceRule
from shared.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthReport:
    raised: int
    ended: int


async def sweep(pool: Pool, clock: Clock, rule: PresenceRule) -> HealthReport:
    """One round: raise what started, end what is over, in one transaction."""
    now = clock.now()
    offline_since = now - rule.offline_after
    async with pool.connection() as conn, conn.transaction():
        ended = await store.end_kiosks_offline(conn, now=now, offline_since=offline_since)
        ended += await store.end_keypad_lockouts(conn, now=now)
        raised = await store.raise_kiosks_offline(conn, now=now, offline_since=offline_since)
    return HealthReport(raised=raised, ended=ended)


class FleetHealthRunner:
    """Sweeps every ``interval`` seconds until cancelled; a failed round is retried."""

    def __init__(self, pool: Pool, clock: Clock, rule: PresenceRule, interval: float) -> None:
        self._pool = pool
        self._clock = clock
        self._rule = rule
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                report = await sweep(self._pool, self._clock, self._rule)
                if report.raised or report.ended:
                    log.info(
                        "fleet health: %d alerts raised, %d ended", report.raised, report.ended
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fleet health round failed; retrying in %.0f s", self._interval)
            await asyncio.sleep(self._interval)
