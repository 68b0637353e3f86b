"""How rows become values: times as sortable UTC text, JSON as canonical text, enums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.store.records import (
    ACTIVE_OPERATION_STATES,
    OperationState,
    from_db_time,
    from_json,
    optional_bool,
    to_db_time,
    to_json,
)

aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=7))]),
)


def test_db_time_is_utc_with_microseconds() -> None:
    berlin = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert to_db_time(berlin) == "2026-03-02T09:00:00.000000+00:00"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_db_time(datetime(2026, 3, 2, 9, 0))


@given(aware_times)
def test_db_time_round_trips(when: datetime) -> None:
    back = from_db_time(to_db_time(when))
    assert back == when
    assert back is not None
    assert back.utcoffset() == timedelta(0)


@given(aware_times, aware_times)
def test_db_time_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (to_db_time(a) < to_db_time(b)) == (a < b)


def test_from_db_time_keeps_none() -> None:
    assert from_db_time(None) is None


def test_json_is_canonical_and_objects_only() -> None:
    assert to_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert from_json('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="JSON object"):
        from_json("[1, 2]")


def test_optional_bool() -> None:
    assert [optional_bool(v) for v in (None, 0, 1)] == [None, False, True]


def test_active_operation_states() -> None:
    assert {s for s in OperationState if s.is_active} == ACTIVE_OPERATION_STATES
    assert not OperationState.COMPLETED.is_active
    assert not OperationState.ABANDONED.is_active
