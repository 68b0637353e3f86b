"""Alerts with a start and an end: a confirmed outage, boards not answering, a keypad lockout,
a door left open; brief drops raise nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from psycopg.rows import DictRow

from cloud import fleet_health
from cloud.store import alerts, kiosks
from cloud.sync.presence import PresenceRule
from cloud.sync.worker import SyncWorker
from shared.clock import ManualClock

from .conftest import KioskPeer, Site, eventually, now

RULE = PresenceRule(stale_after=timedelta(seconds=65), offline_after=timedelta(minutes=5))


async def _alerts(site: Site, kind: str) -> list[DictRow]:
    async with site.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, raised_at, resolved_at, resolution, detail FROM fleet_alerts"
            " WHERE location_id = %s AND kind = %s ORDER BY alert_id",
            (site.location_id, kind),
        )
        return await cur.fetchall()


async def _sweep(site: Site, at: datetime) -> None:
    await fleet_health.sweep(site.pool, ManualClock(at), RULE)


async def test_a_confirmed_outage_raises_one_alert_that_ends_when_the_kiosk_is_back(
    site: Site,
) -> None:
    t0 = now()
    await kiosks.mark_born(
        site.pool, kiosk_id=site.kiosk_id, epoch=1, firmware="1", last_revision=0, now=t0
    )
    # Silent for 30 s, then 4 minutes: stale at most, no alert.
    for later in (timedelta(seconds=30), timedelta(minutes=4)):
        await _sweep(site, t0 + later)
        assert await _alerts(site, "kiosk_offline") == []
    # Silent for the threshold: one alert, however many sweeps.
    await _sweep(site, t0 + timedelta(minutes=5, seconds=1))
    await _sweep(site, t0 + timedelta(minutes=6))
    [alert] = await _alerts(site, "kiosk_offline")
    assert alert["resolved_at"] is None
    # Back: ended at the next sweep.
    back = t0 + timedelta(minutes=7)
    await kiosks.mark_born(
        site.pool, kiosk_id=site.kiosk_id, epoch=2, firmware="1", last_revision=0, now=back
    )
    await _sweep(site, back + timedelta(seconds=1))
    [alert] = await _alerts(site, "kiosk_offline")
    assert alert["resolved_at"] == back + timedelta(seconds=1)
    assert alert["resolution"] == "kiosk back online"


async def test_a_30_second_drop_raises_no_offline_alert(site: Site) -> None:
    t0 = now()
    await kiosks.mark_born(
        site.pool, kiosk_id=site.kiosk_id, epoch=1, firmware="1", last_revision=0, now=t0
    )
    await kiosks.mark_dead(site.pool, kiosk_id=site.kiosk_id, epoch=1, now=t0)  # its will
    await _sweep(site, t0 + timedelta(seconds=30))
    await kiosks.mark_born(
        site.pool,
        kiosk_id=site.kiosk_id,
        epoch=2,
        firmware="1",
        last_revision=0,
        now=t0 + timedelta(seconds=30),
    )
    await _sweep(site, t0 + timedelta(minutes=1))
    assert await _alerts(site, "kiosk_offline") == []
    # Dead for good: offline once the threshold has passed since its will.
    died = t0 + timedelta(minutes=2)
    await kiosks.mark_dead(site.pool, kiosk_id=site.kiosk_id, epoch=2, now=died)
    await _sweep(site, died + timedelta(minutes=4))
    assert await _alerts(site, "kiosk_offline") == []
    await _sweep(site, died + timedelta(minutes=5))
    assert len(await _alerts(site, "kiosk_offline")) == 1


async def test_boards_not_answering_start_and_end_with_the_kiosks_events(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    await peer.send_events(
        [peer.event("door_bank_unavailable", {"error": "PortError: /dev/ttyUSB0 gone"})]
    )
    await eventually(lambda: _has(site, "door_bank_unavailable"))
    [alert] = await _alerts(site, "door_bank_unavailable")
    assert alert["resolved_at"] is None
    await peer.send_events([peer.event("door_bank_restored", {"failed_polls": 4})])
    assert (await peer.ack_through(2)).through_sequence == 2
    [alert] = await _alerts(site, "door_bank_unavailable")
    assert alert["resolution"] == "boards answering"


async def test_a_keypad_lockout_ends_when_the_kiosk_said_it_would(site: Site) -> None:
    t0 = now()
    until = t0 + timedelta(minutes=15)
    async with site.pool.connection() as conn:
        await alerts.raise_alert(
            conn,
            location_id=site.location_id,
            kiosk_id=site.kiosk_id,
            kind="keypad_locked",
            door_number=None,
            detail=json.dumps({"failures": 5, "locked_until": until.isoformat()}),
            now=t0,
        )
    await _sweep(site, t0 + timedelta(minutes=14))
    assert (await _alerts(site, "keypad_locked"))[0]["resolved_at"] is None
    await _sweep(site, t0 + timedelta(minutes=16))
    assert (await _alerts(site, "keypad_locked"))[0]["resolved_at"] == until


async def test_a_door_left_open_ends_when_the_kiosk_sees_it_shut(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    opened = now() - timedelta(minutes=3)
    await peer.send_events(
        [peer.event("door_left_open", {"door": 2, "open_since": opened.isoformat()})]
    )
    await eventually(lambda: _has(site, "door_left_open"))
    [alert] = await _alerts(site, "door_left_open")
    assert alert["resolved_at"] is None
    await peer.send_events([peer.event("door_closed", {"door": 2})])
    assert (await peer.ack_through(2)).through_sequence == 2
    [alert] = await _alerts(site, "door_left_open")
    assert alert["resolution"] == "door closed"


async def _has(site: Site, kind: str) -> bool:
    return bool(await _alerts(site, kind))
