"""The service with its sync worker inside: presence in the admin API, remote opening."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cloud.api.app import create_app
from cloud.config import CloudSettings
from cloud.server import bind, serve
from cloud.sync.keys import write_private
from shared.protocol import (
    BirthBody,
    ChangesBody,
    Channel,
    DeathBody,
    HeartbeatBody,
    MessageType,
    RemoteOpenBody,
)
from shared.signing import Signer

from .conftest import TEST_SHARE_GROUP, KioskPeer, Site, eventually, now

ADMIN = "sync-admin-key"


@contextlib.asynccontextmanager
async def running_service(
    url: str,
    broker: tuple[str, int, bool],
    signer: Signer,
    folder: Path,
    *,
    share_group: str = TEST_SHARE_GROUP,
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    key_file = folder / "cloud.pem"
    write_private(key_file, signer.private_pem())
    host, port, shared = broker
    settings = CloudSettings(
        database_url=url,
        admin_api_key=ADMIN,
        run_background_jobs=False,
        mqtt_url=f"mqtt://{host}:{port}",
        mqtt_shared_subscription=shared,
        # This run's own group: a parallel test run (or a second xdist worker) on the same
        # broker must not take half of this service's messages.
        mqtt_share_group=share_group,
        cloud_key_file=str(key_file),
        kiosk_stale_after_seconds=90,
    )
    app = create_app(settings)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def on_ready(base: str) -> None:
        ready.set_result(base)

    task = asyncio.create_task(
        serve(app, bind("127.0.0.1", 0), on_ready=on_ready, stop=stop, log_level="warning")
    )
    try:
        base = await asyncio.wait_for(ready, 30)
        await asyncio.wait_for(app.state.sync_worker.ready.wait(), 20)
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            yield client, app
    finally:
        stop.set()
        await task


@pytest.fixture
async def service(
    sync_db_url: str, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(sync_db_url, mqtt_broker, cloud_signer, tmp_path) as (client, _):
        yield client


async def _kiosk(service: httpx.AsyncClient, site: Site) -> dict[str, Any]:
    r = await service.get(f"/api/v1/admin/locations/{site.location_id}")
    assert r.status_code == 200, r.text
    [kiosk] = r.json()["kiosks"]
    return dict(kiosk)


async def test_the_service_subscribes_in_the_share_group_its_settings_name(
    sync_db_url: str, mqtt_broker: tuple[str, int, bool], cloud_signer: Signer, tmp_path: Path
) -> None:
    if not mqtt_broker[2]:
        pytest.skip("the test broker has no shared subscriptions (set LOCKER_TEST_MQTT_URL)")
    group = f"locker-cloud-staging-{uuid.uuid4().hex[:6]}"
    async with running_service(
        sync_db_url, mqtt_broker, cloud_signer, tmp_path, share_group=group
    ) as (_, app):
        assert app.state.sync_worker.subscription == f"$share/{group}/locker/v1/+/kiosk/#"


def _birth(site: Site, epoch: int) -> BirthBody:
    return BirthBody(kiosk_id=site.kiosk_id, epoch=epoch, firmware="1.2.3", last_revision=0)


async def test_a_late_will_of_an_old_connection_does_not_mark_a_live_kiosk_offline(
    site: Site, service: httpx.AsyncClient, peer: KioskPeer
) -> None:
    assert (await _kiosk(service, site))["status"] == "never_seen"
    await peer.send(Channel.KIOSK_PRESENCE, MessageType.BIRTH, _birth(site, 1))
    await eventually(lambda: _status_is(service, site, "online", 1))
    await peer.send(Channel.KIOSK_PRESENCE, MessageType.BIRTH, _birth(site, 2))
    await eventually(lambda: _status_is(service, site, "online", 2))

    # The will of connection 1 arrives late: kiosk still online at epoch 2.
    late_will = DeathBody(kiosk_id=site.kiosk_id, epoch=1)
    await peer.send(Channel.KIOSK_PRESENCE, MessageType.DEATH, late_will)
    heartbeat = HeartbeatBody(
        kiosk_id=site.kiosk_id,
        epoch=2,
        door_faults={"3": "sensor stuck"},
        outbox_depth=4,
        last_revision=0,
        disk_free_bytes=123_456,
        board_error=None,
    )
    await peer.send(Channel.KIOSK_HEARTBEAT, MessageType.HEARTBEAT, heartbeat)
    await eventually(lambda: _has_heartbeat(service, site))
    kiosk = await _kiosk(service, site)
    assert (kiosk["status"], kiosk["epoch"], kiosk["firmware"]) == ("online", 2, "1.2.3")
    assert kiosk["heartbeat"]["door_faults"] == {"3": "sensor stuck"}
    assert kiosk["heartbeat"]["outbox_depth"] == 4
    r = await service.get(f"/api/v1/locations/{site.location_id}")
    assert r.json()["kiosk_status"] == "online"

    # The will of the live connection does mark it down: stale until the outage is confirmed
    # (LOCKER_KIOSK_OFFLINE_AFTER_SECONDS, tests/cloud_sync/test_presence_rule.py).
    await peer.send(
        Channel.KIOSK_PRESENCE, MessageType.DEATH, DeathBody(kiosk_id=site.kiosk_id, epoch=2)
    )
    await eventually(lambda: _status_is(service, site, "stale", 2))
    kiosk = await _kiosk(service, site)
    assert kiosk["death_at"] is not None


async def _status_is(service: httpx.AsyncClient, site: Site, status: str, epoch: int) -> bool:
    kiosk = await _kiosk(service, site)
    return bool(kiosk["status"] == status and kiosk["epoch"] == epoch)


async def _has_heartbeat(service: httpx.AsyncClient, site: Site) -> bool:
    return (await _kiosk(service, site))["heartbeat"] is not None


async def test_an_operator_opens_a_door_remotely_and_sees_the_kiosks_alerts(
    site: Site, service: httpx.AsyncClient, peer: KioskPeer
) -> None:
    r = await service.post(
        f"/api/v1/admin/locations/{site.location_id}/doors/4/open",
        json={"reason": "customer on the phone", "requested_by": "op-3"},
    )
    assert r.status_code == 202, r.text
    message = await peer.expect(MessageType.REMOTE_OPEN)
    assert isinstance(message.body, RemoteOpenBody)
    assert str(message.body.command_id) == r.json()["command_id"]
    assert (message.body.door, message.body.requested_by) == (4, "op-3")

    missing = await service.post(
        f"/api/v1/admin/locations/{site.location_id}/doors/99/open", json={"reason": "x"}
    )
    assert missing.json()["error"]["code"] == "door_not_found"

    await peer.send_events(
        [peer.event("door_left_open", {"door": 4, "open_since": now().isoformat()})]
    )
    await peer.ack_through(1)
    r = await service.get(f"/api/v1/admin/locations/{site.location_id}/alerts")
    assert [(a["kind"], a["door_number"]) for a in r.json()] == [("door_left_open", 4)]


async def test_a_kiosk_reporting_an_old_revision_is_sent_what_it_lacks(
    site: Site, service: httpx.AsyncClient, peer: KioskPeer
) -> None:
    """A lost sync request does not leave a kiosk behind: its heartbeat's revision catches it up."""
    await site.reserve()
    await site.reserve()
    # Both changes go out as they are committed (the kiosk is supposed to have missed them).
    await peer.expect(
        MessageType.CHANGES, lambda m: isinstance(m.body, ChangesBody) and m.body.to_revision == 2
    )
    heartbeat = HeartbeatBody(
        kiosk_id=site.kiosk_id,
        epoch=1,
        door_faults={},
        outbox_depth=0,
        last_revision=1,
        disk_free_bytes=1,
        board_error=None,
    )

    await peer.send(Channel.KIOSK_HEARTBEAT, MessageType.HEARTBEAT, heartbeat)

    message = await peer.expect(
        MessageType.CHANGES, lambda m: isinstance(m.body, ChangesBody) and m.body.from_revision == 1
    )
    assert isinstance(message.body, ChangesBody)
    assert [c.revision for c in message.body.changes] == [2]
