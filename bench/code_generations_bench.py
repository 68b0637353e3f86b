"""Pickup-code check latency with one generation of the code secret vs two (issue 9 rotation).

After a rotation, and until the old generation's last code ends, the kiosk hashes a typed code
under every generation still in use and looks all the hashes up at once
(`kiosk.store.code_secrets.hashes_of`, `kiosk.store.codes.find_code_of`). This measures what
that costs the keypad, with the kiosk's own check, `kiosk.flows.code_entry.look_up_code`,
inside a store transaction as the pickup flow runs it (the look-up and, for a wrong code, the
failure count and audit entry; the durable COMMIT of the flow is included).

Set-up: a file-backed store (``Store.open`` in a temporary folder: WAL, ``synchronous=FULL``)
with ``--parcels`` reserved parcels, each with its own code, applied through the same path as
the cloud's changes (`kiosk.store.changes.apply_allocation`). Phase 1: every code is under
generation 1. Then generation 2 is made from a real X25519 exchange (`make_generation`) and
``--parcels`` more parcels are added under it; phase 2 checks codes of both generations. Each
phase times ``--checks`` right codes (drawn at random from the phase's parcels) and as many
wrong ones (the keypad's lock-out is reset between tries so it never refuses early).

Human-readable progress goes to stdout; the LAST line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from kiosk.flows.code_entry import look_up_code
from kiosk.flows.context import FlowContext
from kiosk.hardware.fake_bank import FakeDoorBank
from kiosk.store import code_secrets
from kiosk.store.changes import AllocationUpdate, apply_allocation
from kiosk.store.code_hash import CodeHasher
from kiosk.store.database import KioskIdentity, Store
from kiosk.store.records import AllocationKind, CodeKind
from shared import code_secret_exchange
from shared.codes import PickupCode, code_hash
from shared.sizes import Size
from shared.states import AllocationStatus


def _add_parcels(
    store: Store, secret: bytes, generation: int, count: int, revision: int
) -> tuple[list[str], int]:
    codes: list[str] = []
    now = datetime.now(UTC)
    for _ in range(count):
        code = PickupCode.generate()
        revision += 1
        apply_allocation(
            store,
            AllocationUpdate(
                allocation_id=str(uuid.uuid4()),
                kind=AllocationKind.DELIVERY,
                barcode=f"PKG-{uuid.uuid4().hex[:10]}",
                size=Size.SMALL,
                status=AllocationStatus.RESERVED,
                code_hash=code_hash(secret, code),
                code_generation=generation,
            ),
            revision,
            now,
        )
        codes.append(code.value)
    return codes, revision


def _time_checks(ctx: FlowContext, codes: list[str], checks: int, right: bool) -> list[float]:
    store = ctx.store
    times: list[float] = []
    for _ in range(checks):
        raw = random.choice(codes) if right else PickupCode.generate().value
        start = time.perf_counter_ns()
        with store.transaction() as db:
            record, refused = look_up_code(ctx, db, raw, CodeKind.PICKUP, via="bench")
        times.append((time.perf_counter_ns() - start) / 1e6)
        assert (record is not None) is right, (raw, refused)
        with store.transaction() as db:  # not measured: keep the keypad from locking
            db.execute("DELETE FROM keypad_failures")
            db.execute("UPDATE keypad_lock SET locked_until = NULL")
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=200, help="parcels per generation")
    parser.add_argument("--checks", type=int, default=2000, help="checks per kind and phase")
    args = parser.parse_args()
    random.seed(9)
    load_start = os.getloadavg()[0]
    base = secrets.token_bytes(32)
    identity = KioskIdentity("loc-bench", "kiosk-bench")
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "kiosk.db", CodeHasher(base), identity)
        ctx = FlowContext(store=store, bank=FakeDoorBank(1))
        first, revision = _add_parcels(store, base, 1, args.parcels, 0)
        print(f"phase 1: {len(first)} parcels under generation 1")
        one_right = _time_checks(ctx, first, args.checks, right=True)
        one_wrong = _time_checks(ctx, first, args.checks, right=False)

        cloud_private, cloud_public = code_secret_exchange.new_half()
        assert code_secrets.make_generation(
            store, identity.kiosk_id, 2, cloud_public, datetime.now(UTC)
        )
        [kiosk_public_hex] = [
            json.loads(row["payload"])["kiosk_public"]
            for row in store.db.query(
                "SELECT payload FROM outbox WHERE type = ?", ["code_secret_rotated"]
            )
        ]
        second_secret = code_secret_exchange.generation_secret(
            cloud_private, bytes.fromhex(kiosk_public_hex), identity.kiosk_id, 2
        )
        second, revision = _add_parcels(store, second_secret, 2, args.parcels, revision)
        assert [g.generation for g in code_secrets.live_generations(store)] == [2, 1]
        print(f"phase 2: {len(second)} more parcels under generation 2 (both generations live)")
        both = first + second
        two_right = _time_checks(ctx, both, args.checks, right=True)
        two_wrong = _time_checks(ctx, both, args.checks, right=False)
        store.close()
    result = {
        "benchmark": "code_generations",
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "python": platform.python_version(),
        "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "parcels_per_generation": args.parcels,
        "checks": args.checks,
        "one_generation_right_code": _summary(one_right),
        "one_generation_wrong_code": _summary(one_wrong),
        "two_generations_right_code": _summary(two_right),
        "two_generations_wrong_code": _summary(two_wrong),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
