"""The shown presence: brief drops are stale, only a confirmed outage is offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.store.kiosks import KioskPresence
from cloud.sync.presence import PresenceRule

RULE = PresenceRule(stale_after=timedelta(seconds=65), offline_after=timedelta(minutes=5))
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def kiosk(
    status: str, *, heard: datetime | None = T0, died: datetime | None = None
) -> KioskPresence:
    return KioskPresence(
        kiosk_id="k1",
        status=status,
        epoch=1 if status != "never_seen" else None,
        firmware="1",
        last_revision=0,
        registered_at=T0 - timedelta(days=1),
        birth_at=heard,
        death_at=died,
        heartbeat_at=heard,
        heartbeat=None,
    )


@pytest.mark.parametrize(
    ("silent_for", "shown"),
    [
        (timedelta(seconds=30), "online"),  # one heartbeat missed: nothing to see
        (timedelta(seconds=65), "online"),
        (timedelta(seconds=66), "stale"),  # two missed
        (timedelta(minutes=4, seconds=59), "stale"),
        (timedelta(minutes=5), "offline"),  # silent for the threshold: a confirmed outage
    ],
)
def test_a_silent_kiosk_is_stale_then_offline(silent_for: timedelta, shown: str) -> None:
    assert RULE.shown_status(kiosk("online"), T0 + silent_for) == shown


@pytest.mark.parametrize(
    ("dead_for", "shown"),
    [
        (timedelta(seconds=1), "stale"),  # its will: down, but maybe only for a moment
        (timedelta(seconds=30), "stale"),  # a 30 s drop never shows offline
        (timedelta(minutes=5), "offline"),
    ],
)
def test_a_dead_kiosk_is_offline_only_once_the_outage_is_confirmed(
    dead_for: timedelta, shown: str
) -> None:
    died = T0 + timedelta(seconds=10)
    assert RULE.shown_status(kiosk("offline", died=died), died + dead_for) == shown


def test_a_kiosk_never_heard_from_is_never_seen() -> None:
    never = kiosk("never_seen", heard=None)
    assert RULE.shown_status(never, T0 + timedelta(days=3)) == "never_seen"
