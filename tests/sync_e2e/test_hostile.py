"""Forged, replayed and expired messages, and one kiosk's key speaking for another location,
sent into the running system: every one is refused, and nothing changes on either side."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from shared.protocol import (
    AllocationChange,
    AllocationState,
    ChangesBody,
    EventRecord,
    EventsBody,
    MessageType,
    RemoteOpenBody,
    seal,
)
from shared.signing import Signer
from shared.states import AllocationStatus

from .harness import (
    Capture,
    Cloud,
    Site,
    converge,
    deposit_at_kiosk,
    eventually,
    fingerprint,
    make_site,
    now,
    running_site,
)


async def test_hostile_messages_are_refused_and_change_nothing(
    cloud: Cloud, site: Site, tmp_path: Path
) -> None:
    worker = await cloud.start_worker()
    await site.start_kiosk()
    other_site = await make_site(cloud, tmp_path / "other")
    async with running_site(other_site) as other, Capture(site) as capture:
        parcel = await site.reserve()
        door = await deposit_at_kiosk(site, parcel["package_id"])
        await converge(site)
        await eventually(lambda: capture.of("/cloud/changes") and capture.of("/kiosk/events"))
        before = await fingerprint(site)
        pulses = site.bank.pulses(door)
        assert site.daemon is not None
        assert site.daemon.sync is not None
        kiosk_rejected = site.daemon.sync.status.rejected
        loc, kiosk = site.location_id, site.kiosk_id
        cursor = len(before["kiosk_outbox"])
        stranger = Signer.generate()

        def changes_body(revision: int) -> ChangesBody:
            state = AllocationState(
                allocation_id=str(parcel["allocation_id"]),
                kind="delivery",
                barcode=parcel["package_id"],
                size=parcel["size"],
                status=AllocationStatus.CANCELLED,
                proposed_door=None,
                code_hash=None,
                reservation_expires_at=now() + timedelta(hours=1),
                pickup_expires_at=None,
            )
            return ChangesBody(
                from_revision=revision - 1,
                to_revision=revision,
                changes=[AllocationChange(revision=revision, allocation=state)],
            )

        def events_body(kiosk_id: str) -> EventsBody:
            event = EventRecord(
                sequence=cursor + 1,
                event_id=uuid.uuid4(),
                type="parcel_picked_up",
                created_at=now(),
                payload={"allocation_id": str(parcel["allocation_id"]), "door": door},
            )
            return EventsBody(kiosk_id=kiosk_id, events=[event])

        next_revision = before["kiosk_revision"] + 1
        open_door = RemoteOpenBody(
            command_id=uuid.uuid4(), door=door, reason="forged", requested_by="nobody"
        )
        cloud_topic = f"locker/v1/{loc}/cloud"
        kiosk_topic = f"locker/v1/{loc}/kiosk"
        hostile: list[tuple[str, bytes]] = [
            # To the kiosk: forged (another key), expired (the real key, long ago).
            (
                f"{cloud_topic}/changes",
                seal(
                    stranger,
                    MessageType.CHANGES,
                    location_id=loc,
                    sender="cloud",
                    body=changes_body(next_revision),
                    now=now(),
                ),
            ),
            (
                f"{cloud_topic}/commands",
                seal(
                    stranger,
                    MessageType.REMOTE_OPEN,
                    location_id=loc,
                    sender="cloud",
                    body=open_door,
                    now=now(),
                ),
            ),
            (
                f"{cloud_topic}/changes",
                seal(
                    cloud.signer,
                    MessageType.CHANGES,
                    location_id=loc,
                    sender="cloud",
                    body=changes_body(next_revision),
                    now=now() - timedelta(hours=2),
                ),
            ),
            (
                f"{cloud_topic}/commands",
                seal(
                    cloud.signer,
                    MessageType.REMOTE_OPEN,
                    location_id=loc,
                    sender="cloud",
                    body=open_door,
                    now=now() - timedelta(seconds=45),
                ),
            ),
            # To the cloud: forged, expired, and the other location's kiosk key.
            (
                f"{kiosk_topic}/events",
                seal(
                    stranger,
                    MessageType.EVENTS,
                    location_id=loc,
                    sender=kiosk,
                    body=events_body(kiosk),
                    now=now(),
                ),
            ),
            (
                f"{kiosk_topic}/events",
                seal(
                    site.kiosk_signer,
                    MessageType.EVENTS,
                    location_id=loc,
                    sender=kiosk,
                    body=events_body(kiosk),
                    now=now() - timedelta(hours=2),
                ),
            ),
            (  # the other kiosk, under its own name, at this location
                f"{kiosk_topic}/events",
                seal(
                    other.kiosk_signer,
                    MessageType.EVENTS,
                    location_id=loc,
                    sender=other.kiosk_id,
                    body=events_body(other.kiosk_id),
                    now=now(),
                ),
            ),
            (  # the other kiosk's key, under this kiosk's name
                f"{kiosk_topic}/events",
                seal(
                    other.kiosk_signer,
                    MessageType.EVENTS,
                    location_id=loc,
                    sender=kiosk,
                    body=events_body(kiosk),
                    now=now(),
                ),
            ),
            (  # the other kiosk on its own topic, its body naming this kiosk
                f"locker/v1/{other.location_id}/kiosk/events",
                seal(
                    other.kiosk_signer,
                    MessageType.EVENTS,
                    location_id=other.location_id,
                    sender=other.kiosk_id,
                    body=events_body(kiosk),
                    now=now(),
                ),
            ),
        ]
        # Replays: messages both sides already accepted, sent again at once.
        replays = capture.of("/cloud/changes")[-1:] + capture.of("/kiosk/events")[-1:]
        for name, payload in hostile + replays:
            await capture.publish(name, payload)

        await eventually(
            lambda: (
                kiosk_rejected["bad_signature"] >= 2
                and kiosk_rejected["expired"] >= 2
                and kiosk_rejected["replayed"] >= 1
                and worker.stats["rejected:bad_signature"] >= 2
                and worker.stats["rejected:expired"] >= 1
                and worker.stats["rejected:unknown_sender"] >= 2
                and worker.stats["rejected:replayed"] >= 1
            )
        )
        assert await fingerprint(site) == before
        assert site.bank.pulses(door) == pulses
        assert not site.bank.is_open(door)
        await converge(site)
