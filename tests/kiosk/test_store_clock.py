"""The kiosk's clocks: the manual one tests drive, and the system one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock, SystemClock


def test_manual_clock_starts_at_the_documented_default() -> None:
    assert ManualClock().now() == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 1, 1, tzinfo=UTC)


def test_manual_clock_advances_by_timedelta_or_seconds() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(minutes=2)) == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert clock.advance(0.5) == datetime(2026, 1, 1, 0, 2, 0, 500000, tzinfo=UTC)
    assert clock.now() == datetime(2026, 1, 1, 0, 2, 0, 500000, tzinfo=UTC)


def test_manual_clock_set_moves_to_any_aware_time() -> None:
    clock = ManualClock()
    clock.set(datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    assert clock.now() == datetime(2025, 12, 31, 23, 59, tzinfo=UTC)


def test_manual_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock()
    before = clock.now()
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 1))
    assert clock.now() == before


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after
