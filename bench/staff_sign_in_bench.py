"""Staff sign-in latency with 1, 10 and 30 staff members provisioned (issue 11).

Each sign-in runs the real flow (`kiosk.flows.staff_sign_in.sign_in`) on a file-backed kiosk
store: the typed PIN is hashed with scrypt (`shared.people`) and looked up, the attempt is
audited and committed. Measured twice: with one salt per location (what the cloud sends: one
scrypt per attempt) and, for comparison, with a salt per person (one scrypt per salt in use, so
it grows with the staff count). The PIN typed is the last provisioned member's, the worst case.

    .venv/bin/python bench/staff_sign_in_bench.py [--rounds 20]

Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kiosk.flows import staff_sign_in
from kiosk.flows.context import FlowContext
from kiosk.hardware.door_bank import UnlockTiming
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import CodeHasher, KioskIdentity, Store, people
from kiosk.ui.services import pin_checker
from shared.clock import ManualClock
from shared.people import new_salt, secret_hash
from shared.protocol import StaffChange

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def _run(folder: Path, staff: int, *, per_person_salt: bool, rounds: int) -> dict[str, float]:
    store = Store.open(folder / f"kiosk-{staff}-{per_person_salt}.db", CodeHasher("s" * 32),
                       KioskIdentity("loc", "kiosk"))  # fmt: skip
    clock = ManualClock(NOW)
    ctx = FlowContext(store, FakeDoorBank([1], UnlockTiming()), clock)
    location_salt = new_salt()
    for n in range(1, staff + 1):
        salt = new_salt() if per_person_salt else location_salt
        pin = f"{100000 + n}"
        change = StaffChange(revision=n, staff_id=f"s{n}", name=f"Staff {n}",
                             pin_hash=secret_hash(pin, salt), salt=salt)  # fmt: skip
        people.apply_staff(store, change, NOW)
    typed = f"{100000 + staff}"
    times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        member = staff_sign_in.sign_in(ctx, typed, pin_checker(None))
        times.append((time.perf_counter() - start) * 1000)
        assert member.staff_id == f"s{staff}"
    store.close()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "max_ms": round(times[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for staff in (1, 10, 30):
            for per_person in (False, True):
                key = f"{staff}_{'per_person' if per_person else 'per_location'}"
                results[key] = _run(
                    Path(tmp), staff, per_person_salt=per_person, rounds=args.rounds
                )
                print(key, results[key], flush=True)
    print(json.dumps({"bench": "staff_sign_in", "rounds": args.rounds, "results": results}))


if __name__ == "__main__":
    main()
