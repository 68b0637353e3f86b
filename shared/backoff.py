"""Jittered exponential backoff, the one used by every reconnect and retry loop.

After ``attempt`` failures in a row the ceiling is ``first * 2**attempt``, capped at ``longest``;
the wait is drawn uniformly below it ("full jitter", as in the AWS Architecture Blog's
*Exponential Backoff And Jitter*), so a fleet that lost its broker at the same moment does not
come back at the same moment. ``floor`` keeps part of the ceiling as a minimum (0.5: "equal
jitter", a wait between half the ceiling and the ceiling) where waiting almost nothing would
hammer a device, as the door monitor's polls of a lock board would.

Callers pass their own `random.Random` in tests, so the waits are reproducible.
"""

from __future__ import annotations

import random

MAX_DOUBLINGS = 30
"""Past this many doublings the ceiling is ``longest`` anyway; it keeps ``2**attempt`` small."""

_RANDOM = random.Random()


def backoff_ceiling(attempt: int, *, first: float, longest: float) -> float:
    """The longest wait after ``attempt`` failures in a row: ``min(longest, first * 2**attempt)``.

    Raises:
        ValueError: ``attempt``, ``first`` or ``longest`` is negative.
    """
    if attempt < 0 or first < 0 or longest < 0:
        raise ValueError(
            f"backoff needs attempt, first and longest of 0 or more, got {attempt}, {first},"
            f" {longest}"
        )
    return min(longest, first * (1 << min(attempt, MAX_DOUBLINGS)))


def backoff_delay(
    attempt: int,
    *,
    first: float = 0.5,
    longest: float = 60.0,
    floor: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """A jittered wait, in seconds, after ``attempt`` failures in a row (0 for the first retry).

    Args:
        attempt: Failures in a row before this wait (0 or more).
        first: The ceiling of the first wait.
        longest: The ceiling never exceeds this.
        floor: The share of the ceiling always waited, from 0 (full jitter) to 1 (no jitter).
        rng: The random source (the module's by default).

    Returns:
        A wait uniform in ``[floor * ceiling, ceiling]``.

    Raises:
        ValueError: a parameter is out of range (see `backoff_ceiling`; ``floor`` outside 0-1).
    """
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be between 0 and 1, got {floor}")
    ceiling = backoff_ceiling(attempt, first=first, longest=longest)
    return (rng or _RANDOM).uniform(floor * ceiling, ceiling)
