"""Everything the cloud publishes to the kiosks: changes, snapshots, acks and remote commands.

**Changes after commit.** An insert into ``location_changes`` notifies ``locker_location_changes``
(a trigger), so whichever process committed (an API replica, a lifecycle job, a worker applying
events), the sync workers hear of it after commit and publish the new entries: no shared memory
between processes. ``location_publications`` records how far each location's log has been published;
a worker locks that row, skipping it when another worker holds it
(`cloud.store.publications.lock_publication`), while it publishes, so two workers do not publish the
same entries, and publishes through the revision it read there (an entry committed later, or while
another worker held the row, notifies every worker after its commit and is published at the next
wakeup). The worker coalesces its wakeups: one round per location however many of its notifications
were waiting (`cloud.sync.worker`). A sweep every few seconds catches whatever a lost notification
left behind. One ``changes`` message carries everything unpublished when it is sent: one commit or
several (a burst the worker coalesced, or after an outage), consecutive revisions either way. A
location without a registered kiosk has no publication row and nothing is published for it.

**Answers.** A ``sync_request`` is answered with the changes after its revision (in messages of
at most `CHUNK` changes) or, when the log no longer holds them, with a snapshot. Nothing is sent
to a kiosk that is up to date.

**Remote commands** are queued in ``remote_commands`` by the admin API (any process) and
published here, signed, with what is left of their 30 s life; a command that waited too long is
marked expired and never sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime, timedelta

from cloud import errors
from cloud.store import changelog, publications, remote_commands, snapshots
from cloud.store.database import Conn, Pool
from cloud.store.remote_commands import RemoteCommand
from cloud.sync.snapshot import stream_snapshot
from shared.clock import Clock
from shared.protocol import (
    CLOUD_SENDER,
    MAX_LIFETIME,
    MAX_PAYLOAD_BYTES,
    AckBody,
    Body,
    Change,
    ChangesBody,
    Channel,
    MessageType,
    RemoteOpenBody,
    RotateKeyBody,
    SnapshotBody,
    seal,
    topic,
)
from shared.signing import Signer
from shared.snapshot_parts import split_snapshot

log = logging.getLogger(__name__)

CHUNK = 200
"""Changes per message: well under the 500 the schema allows and the 256 KiB payload limit."""

REMOTE_OPEN_LIFETIME = MAX_LIFETIME[MessageType.REMOTE_OPEN]
# A command with less life left than this is not worth sending.
_MIN_COMMAND_LIFE = timedelta(seconds=2)
# Commands taken per transaction; a full batch means more may be waiting.
_COMMAND_BATCH = 50

PublishFn = Callable[[str, bytes, int, bool], Awaitable[None]]
"""(topic, payload, qos, retain): publishes one message, raising if the broker did not take it."""


class Publisher:
    """Signs and publishes the cloud's messages through ``publish``."""

    def __init__(self, pool: Pool, signer: Signer, clock: Clock, publish: PublishFn) -> None:
        self._pool = pool
        self._signer = signer
        self._clock = clock
        self._publish = publish

    async def _send(
        self,
        location_id: str,
        channel: Channel,
        kind: MessageType,
        body: Body,
        ttl: timedelta | None = None,
    ) -> None:
        payload = seal(
            self._signer,
            kind,
            location_id=location_id,
            sender=CLOUD_SENDER,
            body=body,
            now=self._clock.now(),
            ttl=ttl,
        )
        if len(payload) > MAX_PAYLOAD_BYTES:
            # Kiosks refuse it unread; say so loudly rather than publish in vain.
            log.error(
                "%s for %s is %d bytes, over the %d-byte limit: not sent",
                kind,
                location_id,
                len(payload),
                MAX_PAYLOAD_BYTES,
            )
            return
        await self._publish(topic(location_id, channel), payload, 1, False)

    async def _send_changes(self, location_id: str, changes: list[Change]) -> None:
        for start in range(0, len(changes), CHUNK):
            chunk = changes[start : start + CHUNK]
            body = ChangesBody(
                from_revision=chunk[0].revision - 1,
                to_revision=chunk[-1].revision,
                changes=chunk,
            )
            await self._send(location_id, Channel.CLOUD_CHANGES, MessageType.CHANGES, body)

    async def send_snapshot(self, location_id: str) -> int:
        """Publishes the location's snapshot; returns its revision.

        One ``snapshot`` message when it fits the payload limit, else ``snapshot_part``
        messages (`shared.snapshot_parts`), each signed, which the kiosk applies only together.
        issue 14: the parts are read through a server-side cursor and published one at a time
        (`cloud.sync.snapshot.stream_snapshot`), so memory does not grow with the location.
        """
        parts = allocations = 0
        revision = 0
        async with self._pool.connection() as conn, conn.transaction():
            await snapshots.read_one_moment(conn)
            # aclosing: a publish that fails (or a worker cancelled) between two parts closes
            # the snapshot's cursor here, before the connection goes back to the pool.
            async with aclosing(stream_snapshot(conn, location_id)) as bodies:
                async for body in bodies:
                    revision = body.revision
                    if isinstance(body, SnapshotBody):
                        whole = seal(
                            self._signer,
                            MessageType.SNAPSHOT,
                            location_id=location_id,
                            sender=CLOUD_SENDER,
                            body=body,
                            now=self._clock.now(),
                        )
                        if len(whole) <= MAX_PAYLOAD_BYTES:
                            await self._publish(
                                topic(location_id, Channel.CLOUD_CHANGES), whole, 1, False
                            )
                            log.info("sent a snapshot of %s at revision %d", location_id, revision)
                            return revision
                        pieces = split_snapshot(body)  # one part's worth that still does not fit
                    else:
                        pieces = [body]
                    for piece in pieces:
                        await self._send(
                            location_id, Channel.CLOUD_CHANGES, MessageType.SNAPSHOT_PART, piece
                        )
                        parts += 1
                        allocations += len(piece.allocations)
        log.info(
            "sent a snapshot of %s at revision %d in %d parts (%d allocations)",
            location_id,
            revision,
            parts,
            allocations,
        )
        return revision

    async def answer_sync_request(self, location_id: str, since: int) -> str:
        """Answers "every change after ``since``": changes, a snapshot, or nothing.

        Returns:
            ``changes``, ``snapshot`` or ``up_to_date``.
        """
        sent_any = False
        while True:
            async with self._pool.connection() as conn:
                catchup = await changelog.changes_since(conn, location_id, since, CHUNK)
            if catchup.needs_snapshot:
                await self.send_snapshot(location_id)
                return "snapshot"
            if not catchup.changes:
                return "changes" if sent_any else "up_to_date"
            await self._send_changes(location_id, catchup.changes)
            sent_any = True
            since = catchup.changes[-1].revision

    async def publish_pending(self, location_id: str) -> int:
        """Publishes the location's log entries not yet published.

        Returns:
            How many revisions were published (a snapshot counts what it covered).

        One round usually does: it stops once it has published through the revision it read
        (a longer backlog takes a round per `CHUNK` changes). A change committed after that read
        notifies after its commit, so the next wakeup (or the sweep) publishes it; checking again
        here would cost every wakeup a second, nearly always empty, transaction.
        """
        total = 0
        while True:
            round_ = await self._publish_round(location_id)
            if round_ is None:
                return total
            published, caught_up = round_
            total += published
            if caught_up:
                return total

    async def _publish_round(self, location_id: str) -> tuple[int, bool] | None:
        """Publishes up to `CHUNK` pending changes (or a snapshot) of the location.

        Returns:
            None if there was nothing to publish (or another worker holds the location), else
            how many revisions were published and whether that reached the revision read.
        """
        async with self._pool.connection() as conn, conn.transaction():
            publication = await publications.lock_publication(conn, location_id)
            # No kiosk registered, another worker is publishing it, or nothing new.
            if publication is None or publication.revision <= publication.published_revision:
                return None
            since = publication.published_revision
            revision = publication.revision
            catchup = await changelog.changes_since(conn, location_id, since, CHUNK)
            if catchup.needs_snapshot:
                # Compacted before it was ever published (workers down for the retention).
                through = await self.send_snapshot(location_id)
            elif catchup.changes:
                await self._send_changes(location_id, catchup.changes)
                through = catchup.changes[-1].revision
            else:
                return None
            await publications.mark_published(conn, location_id, through, self._clock.now())
            return through - since, through >= revision

    async def sweep(self) -> int:
        """Publishes every location whose log is ahead of its publication."""
        async with self._pool.connection() as conn:
            behind = await publications.locations_behind(conn)
        total = 0
        for location_id in behind:
            total += await self.publish_pending(location_id)
        return total

    async def send_ack(
        self,
        location_id: str,
        kiosk_id: str,
        through_sequence: int,
        incarnation: uuid.UUID | None = None,
    ) -> None:
        body = AckBody(
            kiosk_id=kiosk_id, through_sequence=through_sequence, incarnation=incarnation
        )
        await self._send(location_id, Channel.CLOUD_ACKS, MessageType.ACK, body)

    async def publish_commands(self) -> int:
        """Publishes remote commands waiting to go; expires those that waited too long.

        Returns:
            How many commands were published.
        """
        sent = 0
        while True:
            async with self._pool.connection() as conn, conn.transaction():
                commands = await remote_commands.lock_pending(conn, _COMMAND_BATCH)
                for command in commands:
                    sent += await self._send_command(conn, command)
            if len(commands) < _COMMAND_BATCH:
                return sent

    async def _send_command(self, conn: Conn, command: RemoteCommand) -> int:
        now = self._clock.now()
        life = command.expires_at - now
        if life < _MIN_COMMAND_LIFE:
            await remote_commands.mark_expired(conn, command.command_id)
            log.warning("remote command %s expired before it could be sent", command.command_id)
            return 0
        body = RemoteOpenBody(
            command_id=command.command_id,
            door=command.door_number,
            reason=command.reason,
            requested_by=command.requested_by,
        )
        await self._send(
            command.location_id,
            Channel.CLOUD_COMMANDS,
            MessageType.REMOTE_OPEN,
            body,
            ttl=min(life, REMOTE_OPEN_LIFETIME),
        )
        await remote_commands.mark_published(conn, command.command_id, now)
        return 1

    async def send_rotate_key(self, location_id: str, kiosk_id: str, requested_by: str) -> None:
        """Asks the kiosk to make and announce its next signing key (`cloud.sync.key_rotation`).
        Not queued: it is sent again at the kiosk's next heartbeat until the rotation lands."""
        body = RotateKeyBody(kiosk_id=kiosk_id, requested_by=requested_by)
        await self._send(location_id, Channel.CLOUD_COMMANDS, MessageType.ROTATE_KEY, body)


async def queue_remote_open(
    conn: Conn,
    *,
    location_id: str,
    door_number: int,
    reason: str,
    requested_by: str,
    now: datetime,
) -> remote_commands.RemoteCommand:
    """Queues a remote door opening for the sync workers to sign and publish (30 s to live).

    Returns:
        The queued command.

    Raises:
        DoorNotFound: no such door at the location (LocationNotFound: no such location).
    """
    exists = await remote_commands.door_exists(conn, location_id, door_number)
    if exists is None:
        raise errors.LocationNotFound(f"no location {location_id!r}")
    if not exists:
        raise errors.DoorNotFound(f"no door {door_number} at {location_id!r}")
    return await remote_commands.insert(
        conn,
        command_id=uuid.uuid4(),
        location_id=location_id,
        door_number=door_number,
        reason=reason,
        requested_by=requested_by,
        created_at=now,
        expires_at=now + REMOTE_OPEN_LIFETIME,
    )
