"""The fleet's figures in /metrics: kiosk events by outcome, presence, lag, outbox, collection.

Read through `cloud.metrics.exposition` (what the /metrics route serves) and parsed with
prometheus-client's parser. The session's database holds other tests' rows too, so fleet-wide
figures are checked as differences across what the test did.
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from cloud import lifecycle, metrics
from cloud.dispatch import SendFailed, record_result
from cloud.store import kiosks
from cloud.store import notifications as outbox
from cloud.store.alerts import raise_alert
from cloud.sync.presence import PresenceRule
from cloud.sync.worker import SyncWorker
from shared.clock import ManualClock, SystemClock
from tests import parcel_ops

from .conftest import WINDOW, KioskPeer, Site, make_site, now

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STALE = timedelta(seconds=65)
RULE = PresenceRule(stale_after=STALE, offline_after=timedelta(minutes=5))


async def scrape(site: Site, clock: SystemClock | ManualClock | None = None) -> Samples:
    text = await metrics.exposition(site.pool, clock or SystemClock(), RULE)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_kiosk_events_are_counted_by_outcome_and_refusal_reason(
    site: Site, worker: SyncWorker, peer: KioskPeer
) -> None:
    parcel = await site.reserve()
    before = await scrape(site)
    deposit = {
        "allocation_id": str(parcel["allocation_id"]),
        "door": parcel["door_number"],
        "barcode": parcel["package_id"],
        "driver_id": "driver-7",
        "pickup_expires_at": None,
    }
    await peer.send_events(
        [
            peer.event("door_teleported", {"door": 1}),
            peer.event("parcel_deposited", deposit),
            peer.event("parcel_picked_up", {"allocation_id": str(parcel["allocation_id"])}),
        ]
    )
    assert (await peer.ack_through(3)).through_sequence == 3
    after = await scrape(site)
    name = "locker_kiosk_events_total"
    for outcome, reason in (
        ("refused", "unknown_type"),
        ("applied", "none"),
        ("refused", "invalid_payload"),
    ):
        assert value(after, name, outcome=outcome, reason=reason) == (
            value(before, name, outcome=outcome, reason=reason) + 1
        ), (outcome, reason)


async def test_presence_and_change_log_lag(site: Site) -> None:
    before = await scrape(site)
    # Registered, never heard from.
    assert value(before, "locker_location_changelog_lag", location=site.location_id) == 0
    await site.reserve()
    await site.reserve()
    born = now()
    assert await kiosks.mark_born(
        site.pool, kiosk_id=site.kiosk_id, epoch=1, firmware="t", last_revision=0, now=born
    )
    online = await scrape(site)
    assert value(online, "locker_kiosks", status="online") == (
        value(before, "locker_kiosks", status="online") + 1
    )
    assert value(online, "locker_kiosks", status="never_seen") == (
        value(before, "locker_kiosks", status="never_seen") - 1
    )
    # Two changes logged, none reported applied.
    assert value(online, "locker_location_changelog_lag", location=site.location_id) == 2

    # Silent past the stale interval: stale, not offline.
    later = ManualClock(born + STALE + timedelta(seconds=1))
    stale = await scrape(site, later)
    assert value(stale, "locker_kiosks", status="stale") >= (
        value(online, "locker_kiosks", status="stale") + 1
    )

    # Caught up: the location drops out of the lag series.
    assert await kiosks.mark_born(
        site.pool, kiosk_id=site.kiosk_id, epoch=2, firmware="t", last_revision=2, now=now()
    )
    caught_up = await scrape(site)
    key = ("locker_location_changelog_lag", frozenset({("location", site.location_id)}))
    assert key not in caught_up


async def test_outbox_depth_send_failures_and_parcels_awaiting_collection(site: Site) -> None:
    before = await scrape(site)
    parcel = await site.reserve()
    async with site.pool.connection() as conn:
        await parcel_ops.deposit(
            conn,
            carrier_id=site.carrier_id,
            allocation_id=parcel["allocation_id"],
            driver_id="d1",
            scan_code=parcel["package_id"],
            now=now(),
            window=WINDOW,
        )
    deposited = await scrape(site)
    # The pickup code notification waits in the outbox.
    assert value(deposited, "locker_notification_outbox", status="pending") >= (
        value(before, "locker_notification_outbox", status="pending") + 1
    )

    due = await outbox.claim_due(site.pool, now(), now() + timedelta(minutes=5), 1000)
    mine = [n for n in due if n.carrier_id == site.carrier_id]
    assert mine
    failures = value(deposited, "locker_notification_send_failures_total", final="true")
    await record_result(site.pool, mine[0], SendFailed("no such mailbox", permanent=True), now(), 8)
    failed = await scrape(site)
    assert value(failed, "locker_notification_send_failures_total", final="true") == failures + 1
    assert value(failed, "locker_notification_outbox", status="failed") >= (
        value(deposited, "locker_notification_outbox", status="failed") + 1
    )

    # Past the pickup window the parcel waits for the courier.
    # (Other tests' parcels in the session's database may expire too: at least this one.)
    assert await lifecycle.expire_pickups(site.pool, now() + WINDOW + timedelta(hours=1)) >= 1
    expired = await scrape(site)
    assert value(expired, "locker_parcels_awaiting_collection", kind="delivery") >= (
        value(failed, "locker_parcels_awaiting_collection", kind="delivery") + 1
    )


async def test_open_alerts_by_kind(site: Site) -> None:
    other = await make_site(site.pool)
    before = await scrape(site)
    async with site.pool.connection() as conn:
        await raise_alert(
            conn,
            location_id=other.location_id,
            kiosk_id=other.kiosk_id,
            kind="door_tampered",
            door_number=2,
            detail="{}",
            now=now(),
        )
    after = await scrape(site)
    labels = {"kind": "door_tampered", "location": other.location_id}
    assert value(before, "locker_open_alerts", **labels) == 0
    assert value(after, "locker_open_alerts", **labels) == 1
