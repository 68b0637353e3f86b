"""Throttling pickup-code guessing on ``POST /api/v1/pickup``.

A code has 31**6 values, which only stays worthless to guess if guesses are few. Every attempt
is counted, per carrier and per location, in fixed windows, before the code is looked at; one
that succeeds is taken back afterwards, so only failures use up the allowance. Counting first
(rather than after a failure) makes the limit exact under concurrency: of many guesses sent at
once, no more than the limit are looked at. Past the limit the answer is 429 with Retry-After
until the window ends, and the first refusal of a window raises an operator alert.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud import errors
from cloud.store import pickup_guesses
from cloud.store.database import Conn

log = logging.getLogger(__name__)

# Admin callers (the operator's tools) are one scope of their own.
ADMIN_KEY = "(admin)"


@dataclass(frozen=True, slots=True)
class GuessLimits:
    """Failed attempts allowed per window, per carrier and per location."""

    per_carrier: int
    per_location: int
    window: timedelta

    def limit(self, scope: str) -> int:
        return self.per_carrier if scope == "carrier" else self.per_location


@asynccontextmanager
async def guarded_attempt(
    conn: Conn,
    limits: GuessLimits,
    *,
    carrier_id: str | None,
    location_id: str,
    now: datetime,
) -> AsyncIterator[None]:
    """Runs one pickup attempt if the carrier and the location have attempts left.

    ``conn`` must be in autocommit (the count stands whatever the attempt does). A block that
    ends without an error gets its attempt back.

    Raises:
        TooManyAttempts: before the block runs, when either scope is over its limit.
    """
    carrier_key = carrier_id or ADMIN_KEY
    counts = await pickup_guesses.count_attempt(
        conn, carrier_key=carrier_key, location_id=location_id, now=now, window=limits.window
    )
    over = [c for c in counts if c.attempts > limits.limit(c.scope)]
    if over:
        await _refuse(conn, limits, over, location_id=location_id, now=now)
    yield
    await pickup_guesses.forgive_attempt(
        conn,
        carrier_key=carrier_key,
        location_id=location_id,
        window_start={c.scope: c.window_start for c in counts},
    )


async def _refuse(
    conn: Conn,
    limits: GuessLimits,
    over: list[pickup_guesses.Count],
    *,
    location_id: str,
    now: datetime,
) -> None:
    ends = max(c.window_start + limits.window for c in over)
    retry_after = max(1, math.ceil((ends - now).total_seconds()))
    for count in over:
        if count.attempts == limits.limit(count.scope) + 1:  # the window's first refusal
            log.warning(
                "pickup guessing: %s %s over %d failed attempts in %s",
                count.scope,
                count.key,
                limits.limit(count.scope),
                limits.window,
            )
            detail = {"scope": count.scope, "key": count.key, "limit": limits.limit(count.scope)}
            await pickup_guesses.raise_guessing_alert(
                conn, location_id=location_id, detail=json.dumps(detail), now=now
            )
    raise errors.TooManyAttempts(
        "too many failed pickup attempts; try again later",
        retry_after=retry_after,
        details={"scopes": sorted(c.scope for c in over), "retry_after_seconds": retry_after},
    )
