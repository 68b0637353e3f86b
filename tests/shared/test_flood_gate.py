"""The flood gate: a steady rate with a burst per key, and one log line per interval of drops."""

from __future__ import annotations

import logging

import pytest

from shared.flood_gate import OVERFLOW_KEY, FloodGate, RateLimit, RejectionLog

log = logging.getLogger("test.flood")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock, **kw: object) -> FloodGate:
    return FloodGate(
        RateLimit(per_second=10.0, burst=5),
        what="test",
        logger=log,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


def test_a_burst_passes_then_the_steady_rate() -> None:
    clock = Clock()
    limited = gate(clock)

    assert [limited.admit("t") for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 0.35  # 3.5 tokens back
    assert [limited.admit("t") for _ in range(4)] == [True] * 3 + [False]
    assert limited.dropped["t"] == 3


def test_keys_have_buckets_of_their_own() -> None:
    clock = Clock()
    limited = gate(clock)
    for _ in range(50):
        limited.admit("flooded")

    assert limited.admit("quiet")
    assert limited.dropped == {"flooded": 45}


def test_a_flood_is_one_log_line_per_interval_not_one_per_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limited = gate(clock, report_every_s=10.0)
    caplog.set_level(logging.WARNING, logger="test.flood")

    for step in range(20_000):
        clock.now += 0.001  # 20,000 messages over 20 s
        limited.admit(f"topic-{step % 4}")
    clock.now += 10
    limited.admit("topic-0")

    lines = [r.getMessage() for r in caplog.records]
    assert 2 <= len(lines) <= 4, lines
    assert all(line.startswith("test: dropped ") for line in lines)
    assert sum(limited.dropped.values()) > 19_000


def test_random_keys_beyond_the_limit_share_one_bucket() -> None:
    clock = Clock()
    limited = gate(clock, max_keys=3)
    for key in ("a", "b", "c"):
        limited.admit(key)

    admitted = [limited.admit(f"random-{n}") for n in range(20)]

    assert admitted.count(True) == 5  # the overflow bucket's burst, not 5 per new name
    assert limited.dropped[OVERFLOW_KEY] == 15


def test_a_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimit(per_second=0, burst=5)


def test_rejections_of_one_kind_are_one_line_then_a_count_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejections = RejectionLog(log, report_every_s=10.0, clock=clock)
    caplog.set_level(logging.INFO, logger="test.flood")

    for _ in range(500):
        clock.now += 0.01
        rejections.rejected(logging.WARNING, "t/a", "malformed_json", "Expecting value")
    rejections.rejected(logging.WARNING, "t/b", "bad_signature", "no")
    clock.now += 10
    rejections.rejected(logging.WARNING, "t/a", "malformed_json", "Expecting value")

    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "rejected a message on t/a: malformed_json (Expecting value)",
        "rejected a message on t/b: bad_signature (no)",
        "rejected 499 more message(s) on t/a for malformed_json in 15 s",
        "rejected a message on t/a: malformed_json (Expecting value)",
    ]
