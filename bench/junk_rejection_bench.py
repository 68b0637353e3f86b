"""The cost of one junk message the rate limits let through, before and after the raw-bytes
checks (`shared.protocol.check_envelope_shape` and `check_signature_field`, issue 9).

Under its rate limit (100 messages/s per topic by default) junk still reaches the cloud worker's
checks: its early peek at the sender (`cloud.sync.worker._sender`: bounds scan and JSON parse)
and then `open_message` (the same again). Measured here is that path, per junk kind, in
microseconds per message on one core, with the raw-bytes checks in place ("after") and with
them switched off ("before": the checks replaced by no-ops in this process only). A real
envelope is measured too: the new checks must not make it dearer.

Prints one JSON object on its last line (figures: docs/BENCHMARKS.md, docs/security.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from cloud.sync import worker
from shared import protocol
from shared.protocol import Channel, MessageType, Rejected, SyncRequestBody, seal, topic
from shared.signing import Signer

TOPIC = topic("loc-bench", Channel.KIOSK_EVENTS)


def junk_kinds() -> dict[str, bytes]:
    random_bytes = os.urandom(4096)
    return {
        "random_4k": random_bytes,
        "text_200k": b"x" * 200_000,
        "json_array_200k": json.dumps(list(range(30_000))).encode()[:200_000] + b"]",
        "object_without_sig_200k": json.dumps({"v": 1, "junk": ["a" * 50] * 3_500}).encode(),
        "object_with_sig_200k": json.dumps(
            {"v": 1, "sig": "x", "junk": ["a" * 50] * 3_500}
        ).encode(),
    }


def real_envelope() -> bytes:
    signer = Signer.generate()
    body = SyncRequestBody(since_revision=42)
    return seal(
        signer, MessageType.SYNC_REQUEST, location_id="loc-bench", sender="kiosk-bench",
        body=body, now=datetime.now(UTC),
    )  # fmt: skip


def check_path(payload: bytes) -> None:
    """What the worker does with a payload before any key is looked up (no key is known here)."""
    worker._sender(payload)
    with contextlib.suppress(Rejected):
        protocol.open_message(
            payload, TOPIC, keys=lambda _loc, _sender: None, now=datetime.now(UTC)
        )


@contextlib.contextmanager
def raw_checks_off() -> Iterator[None]:
    saved = (protocol.check_envelope_shape, protocol.check_signature_field)
    saved_worker = (worker.check_envelope_shape, worker.check_signature_field)

    def nothing(_payload: bytes) -> None:
        return None

    protocol.check_envelope_shape = protocol.check_signature_field = nothing
    worker.check_envelope_shape = worker.check_signature_field = nothing
    try:
        yield
    finally:
        protocol.check_envelope_shape, protocol.check_signature_field = saved
        worker.check_envelope_shape, worker.check_signature_field = saved_worker


def per_message_us(fn: Callable[[bytes], None], payload: bytes, seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            fn(payload)
        count += 10
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per kind and mode")
    args = parser.parse_args()
    kinds = junk_kinds() | {"real_envelope": real_envelope()}
    results: dict[str, dict[str, float]] = {}
    for name, payload in kinds.items():
        with raw_checks_off():
            before = per_message_us(check_path, payload, args.seconds)
        after = per_message_us(check_path, payload, args.seconds)
        results[name] = {
            "bytes": len(payload),
            "before_us": round(before, 1),
            "after_us": round(after, 1),
        }
        print(f"{name:26} {len(payload):>8} B  before {before:10.1f} us  after {after:10.1f} us")
    print(
        json.dumps(
            {
                "bench": "junk_rejection",
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
                "python": platform.python_version(),
                "per_message": results,
            }
        )
    )


if __name__ == "__main__":
    main()
