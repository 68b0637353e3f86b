"""The reconnect storm after a regional outage, computed: how long until every kiosk is back
when they all lost the broker at once, for the kiosks' backoff (full jitter, doubling from
``--first`` to ``--longest``) against brokers that complete ``--capacity`` TLS handshakes a
second in all (an attempt beyond that fails and backs off).

A simulation, not a measurement of brokers: the capacity is an input (docs/scaling.md derives
one from OpenSSL's measured ECDSA P-256 rates on this machine). Prints one JSON object on its
last line.

    python bench/reconnect_storm.py --kiosks 100000 --capacity 20000 --first 0.5 --longest 3
"""

from __future__ import annotations

import argparse
import heapq
import json
import random


def simulate(
    kiosks: int, capacity: float, first: float, longest: float, seed: int = 1
) -> dict[str, float]:
    rng = random.Random(seed)
    # (time of the next attempt, failures so far); the outage ends at t = 0.
    pending = [(rng.uniform(0, first), 0) for _ in range(kiosks)]
    heapq.heapify(pending)
    slot = 1.0 / capacity
    broker_free_at = 0.0
    attempts = 0
    connected_at: list[float] = []
    while pending:
        at, failures = heapq.heappop(pending)
        attempts += 1
        # The brokers serve handshakes one after another at their capacity; an attempt that
        # would wait longer than a second for its turn times out and backs off.
        start = max(at, broker_free_at)
        if start - at <= 1.0:
            broker_free_at = start + slot
            connected_at.append(start + slot)
            continue
        failures += 1
        window = min(longest, first * 2**failures)
        heapq.heappush(pending, (at + 1.0 + rng.uniform(0, window), failures))
    connected_at.sort()
    return {
        "kiosks": kiosks,
        "capacity_per_s": capacity,
        "backoff_first_s": first,
        "backoff_longest_s": longest,
        "attempts": attempts,
        "attempts_per_kiosk": round(attempts / kiosks, 2),
        "p50_back_s": round(connected_at[len(connected_at) // 2], 2),
        "p99_back_s": round(connected_at[int(len(connected_at) * 0.99)], 2),
        "all_back_s": round(connected_at[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=100_000)
    parser.add_argument("--capacity", type=float, default=20_000)
    parser.add_argument("--first", type=float, default=0.5)
    parser.add_argument("--longest", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(simulate(args.kiosks, args.capacity, args.first, args.longest)))


if __name__ == "__main__":
    main()
