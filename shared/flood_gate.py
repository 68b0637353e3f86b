"""Rate limits on received MQTT messages, with one aggregated log line per interval.

A flood of junk (20,000 messages) used to cost the receiver a JSON parse, a signature check and
a log line each, and delayed a real allocation's arrival at the kiosk from 0.1 s to 3.7 s. A
`FloodGate` sits before all of that: a token bucket per key (a topic, a kiosk) admits a steady
rate with a burst; what it drops is counted, and reported once per interval as a single warning
naming the keys that dropped most. A dropped message is not lost for the protocol: whatever
mattered in it is sent again (kiosk events until acknowledged, cloud changes on the next sync
request).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

OVERFLOW_KEY = "(other)"
"""The bucket that keys beyond ``max_keys`` share, so that random topic names cannot buy a
fresh bucket each."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A sustained ``per_second`` rate with bursts of up to ``burst`` messages.

    Raises:
        ValueError: a rate or burst that is not positive.
    """

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs a positive rate and burst, got {self}")


class FloodGate:
    """Token buckets per key; drops are logged as one line per ``report_every_s``.

    Attributes:
        dropped: Every message dropped so far, per key.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        what: str,
        logger: logging.Logger,
        report_every_s: float = 10.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._what = what
        self._log = logger
        self._report_every = report_every_s
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, at)
        self._unreported: Counter[str] = Counter()
        self._first_unreported_at = 0.0
        # The first drop is reported at once; later ones wait for the interval to end.
        self._reported_at: float | None = None
        self.dropped: Counter[str] = Counter()

    def admit(self, key: str) -> bool:
        """Whether a message under ``key`` may pass now (and takes a token if so)."""
        now = self._clock()
        key = self._bucket_key(key, now)
        tokens, at = self._buckets.get(key, (float(self._limit.burst), now))
        tokens = min(float(self._limit.burst), tokens + (now - at) * self._limit.per_second)
        admitted = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if admitted else tokens, now)
        if not admitted:
            if not self._unreported:
                self._first_unreported_at = now
            self.dropped[key] += 1
            self._unreported[key] += 1
        self._report(now)
        return admitted

    def _bucket_key(self, key: str, now: float) -> str:
        if key in self._buckets or len(self._buckets) < self._max_keys:
            return key
        # Forget the buckets that are full again (their keys went quiet); if none, share one.
        full = float(self._limit.burst)
        for known, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self._limit.per_second >= full:
                del self._buckets[known]
        return key if len(self._buckets) < self._max_keys else OVERFLOW_KEY

    def _report(self, now: float) -> None:
        if not self._unreported:
            return
        if self._reported_at is not None and now - self._reported_at < self._report_every:
            return
        total = sum(self._unreported.values())
        worst = ", ".join(f"{key} ({n})" for key, n in self._unreported.most_common(3))
        self._log.warning(
            "%s: dropped %d message(s) in %.1f s, over %g/s (burst %d): %s%s",
            self._what,
            total,
            now - self._first_unreported_at,
            self._limit.per_second,
            self._limit.burst,
            worst,
            "" if len(self._unreported) <= 3 else f" and {len(self._unreported) - 3} more",
        )
        self._unreported.clear()
        self._reported_at = now


class RejectionLog:
    """Logs rejected messages: the first of a kind (topic and reason) at once, then one line per
    ``report_every_s`` saying how many more of that kind came. Junk under the rate limit would
    otherwise still write a line per message."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        report_every_s: float = 10.0,
        max_kinds: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._report_every = report_every_s
        self._max_kinds = max_kinds
        self._clock = clock
        self._logged_at: dict[tuple[str, str], float] = {}
        self._more: Counter[tuple[str, str]] = Counter()
        self._flushed_at = clock()

    def rejected(self, level: int, topic_name: str, reason: str, detail: str) -> None:
        """One rejected message on ``topic_name`` for ``reason``."""
        now = self._clock()
        kind = (topic_name, reason)
        self._flush(now)
        if kind in self._logged_at:
            self._more[kind] += 1
            return
        if len(self._logged_at) >= self._max_kinds:
            kind = (OVERFLOW_KEY, reason)
            if kind in self._logged_at:
                self._more[kind] += 1
                return
        self._logged_at[kind] = now
        self._log.log(level, "rejected a message on %s: %s (%s)", kind[0], reason, detail)

    def _flush(self, now: float) -> None:
        # Once a second at most: a pass over every kind per message would make a flood of
        # many kinds quadratic.
        if now - self._flushed_at < 1.0:
            return
        self._flushed_at = now
        for kind, at in list(self._logged_at.items()):
            if now - at < self._report_every:
                continue
            more = self._more.pop(kind, 0)
            del self._logged_at[kind]
            if more:
                self._log.warning(
                    "rejected %d more message(s) on %s for %s in %.0f s",
                    more,
                    kind[0],
                    kind[1],
                    now - at,
                )
