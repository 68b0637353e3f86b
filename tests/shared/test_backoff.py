import random

import pytest

from shared.backoff import backoff_ceiling, backoff_delay


def test_the_ceiling_doubles_from_first_up_to_longest() -> None:
    ceilings = [backoff_ceiling(n, first=0.5, longest=10.0) for n in range(8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_the_ceiling_stays_at_longest_after_very_many_failures() -> None:
    assert backoff_ceiling(10_000, first=0.5, longest=60.0) == 60.0


def test_longest_below_first_caps_the_first_wait_too() -> None:
    assert backoff_ceiling(0, first=0.5, longest=0.05) == 0.05


def test_full_jitter_waits_are_within_zero_and_the_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = backoff_ceiling(attempt, first=0.5, longest=60.0)
        waits = [backoff_delay(attempt, first=0.5, longest=60.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        # Jittered: spread over the range, not all at its top.
        assert min(waits) < ceiling * 0.1
        assert max(waits) > ceiling * 0.9


def test_waits_grow_with_the_failures_on_average() -> None:
    rng = random.Random(2)
    means = [
        sum(backoff_delay(n, first=0.5, longest=60.0, rng=rng) for _ in range(500)) / 500
        for n in range(7)
    ]
    assert means == sorted(means)
    assert means[6] > 10 * means[0]


def test_a_floor_keeps_part_of_the_ceiling() -> None:
    rng = random.Random(3)
    waits = [backoff_delay(3, first=0.5, longest=60.0, floor=0.5, rng=rng) for _ in range(200)]
    assert all(2.0 <= wait <= 4.0 for wait in waits)
    assert backoff_delay(3, first=0.5, longest=60.0, floor=1.0, rng=rng) == 4.0


def test_a_seeded_random_gives_the_same_waits() -> None:
    first = [backoff_delay(n, rng=random.Random(9)) for n in range(5)]
    again = [backoff_delay(n, rng=random.Random(9)) for n in range(5)]
    assert first == again


def test_the_defaults_are_half_a_second_doubling_to_a_minute() -> None:
    rng = random.Random(4)
    assert all(backoff_delay(0, rng=rng) <= 0.5 for _ in range(100))
    assert max(backoff_delay(20, rng=rng) for _ in range(100)) <= 60.0


@pytest.mark.parametrize(
    ("attempt", "first", "longest", "floor"),
    [(-1, 0.5, 1.0, 0.0), (0, -0.5, 1.0, 0.0), (0, 0.5, -1.0, 0.0), (0, 0.5, 1.0, 1.5)],
)
def test_out_of_range_parameters_are_refused(
    attempt: int, first: float, longest: float, floor: float
) -> None:
    with pytest.raises(ValueError, match=r"backoff needs|floor must"):
        backoff_delay(attempt, first=first, longest=longest, floor=floor)
