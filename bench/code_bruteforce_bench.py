"""What a stolen kiosk store gives away: the cost of brute-forcing its pickup codes.

Measured on this machine, one core, in Python (``hashlib``/``hmac`` are OpenSSL underneath):

1. **Today's scheme** (`shared.codes.code_hash`: HMAC-SHA256 under the location's code secret,
   which sits on the kiosk's SD card beside ``kiosk.db``). The thief hashes every possible code
   once (31^6 = 887,503,681) and matches each hash against *all* stored hashes at once: the
   time to enumerate the code space is the time to learn every live code. Measured as the rate
   of ``code_hash`` over ``--hmac-samples`` codes, projected to the whole space.
2. **The proposed scheme** (docs/security.md, not yet the wire format): per parcel a random
   salt and ``scrypt(code, salt, n, r, p)``, found at pickup through a short keyed tag
   (``--tag-bits`` of an HMAC under the secret). The tag is no secret to a thief holding the
   secret, so it filters: per parcel ``31^6 / 2^bits`` candidate codes each cost one scrypt,
   and every parcel is attacked on its own (its salt). Measured: the time of one scrypt, the
   projected time to search one parcel's candidates on ``--cores`` cores, and the pickup
   latency of the verification itself (tag HMAC, look-up among ``--parcels`` stored parcels,
   scrypt of each candidate) over ``--pickups`` typed codes.

Prints one JSON object on its last line (figures: docs/BENCHMARKS.md, docs/security.md).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import secrets
import statistics
import time
from dataclasses import dataclass

from shared.codes import CODE_ALPHABET, CODE_LENGTH, PickupCode, code_hash

CODE_SPACE = len(CODE_ALPHABET) ** CODE_LENGTH
DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class StoredParcel:
    tag: int
    salt: bytes
    verifier: bytes


def tag_of(secret: bytes, code: str, bits: int) -> int:
    digest = hmac.new(secret, b"tag:" + code.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bits)


def scrypt(code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(code.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024)


def random_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def hmac_rate(samples: int) -> float:
    secret = secrets.token_bytes(32)
    codes = [PickupCode(random_code()) for _ in range(samples)]
    started = time.perf_counter()
    for code in codes:
        code_hash(secret, code)
    return samples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hmac-samples", type=int, default=200_000)
    parser.add_argument("--scrypt-n", type=int, default=2**15)
    parser.add_argument("--scrypt-r", type=int, default=8)
    parser.add_argument("--scrypt-p", type=int, default=1)
    parser.add_argument("--scrypt-samples", type=int, default=10)
    parser.add_argument("--tag-bits", type=int, default=8)
    parser.add_argument("--parcels", type=int, default=200, help="live parcels at the kiosk")
    parser.add_argument("--pickups", type=int, default=20)
    parser.add_argument("--cores", type=int, default=8, help="the thief's PC")
    args = parser.parse_args()
    n, r, p, bits = args.scrypt_n, args.scrypt_r, args.scrypt_p, args.tag_bits

    rate = hmac_rate(args.hmac_samples)
    today_s = CODE_SPACE / rate

    salt = secrets.token_bytes(16)
    times = []
    for _ in range(args.scrypt_samples):
        started = time.perf_counter()
        scrypt(random_code(), salt, n, r, p)
        times.append(time.perf_counter() - started)
    scrypt_s = statistics.median(times)
    candidates = CODE_SPACE / 2**bits
    per_parcel_s = candidates * scrypt_s / args.cores

    secret = secrets.token_bytes(32)
    codes = [random_code() for _ in range(args.parcels)]
    stored: dict[int, list[StoredParcel]] = {}
    for code in codes:
        parcel_salt = secrets.token_bytes(16)
        parcel = StoredParcel(
            tag_of(secret, code, bits), parcel_salt, scrypt(code, parcel_salt, n, r, p)
        )
        stored.setdefault(parcel.tag, []).append(parcel)

    def verify(code: str) -> tuple[StoredParcel | None, int, float]:
        started = time.perf_counter()
        tried = 0
        for parcel in stored.get(tag_of(secret, code, bits), []):
            tried += 1
            if hmac.compare_digest(scrypt(code, parcel.salt, n, r, p), parcel.verifier):
                return parcel, tried, time.perf_counter() - started
        return None, tried, time.perf_counter() - started

    # Codes typed in any order (the first inserted sit first in their tag's list), and wrong
    # codes, which try every candidate of their tag.
    latencies, scrypts, wrong = [], [], []
    for code in secrets.SystemRandom().sample(codes, min(args.pickups, len(codes))):
        found, tried, took = verify(code)
        assert found is not None
        latencies.append(took)
        scrypts.append(tried)
    for _ in range(args.pickups):
        found, tried, took = verify(random_code())
        wrong.append(took)
    latencies.sort()
    wrong.sort()

    result = {
        "benchmark": "code_bruteforce",
        "machine": f"{platform.processor() or platform.machine()} x{os.cpu_count()}",
        "python": platform.python_version(),
        "code_space": CODE_SPACE,
        "today_hmac_per_s_one_core": round(rate),
        "today_every_live_code_one_core_min": round(today_s / 60, 1),
        "today_every_live_code_8_cores_min": round(today_s / 60 / 8, 1),
        "scrypt": {"n": n, "r": r, "p": p, "memory_mib": 128 * n * r // 2**20},
        "scrypt_one_s": round(scrypt_s, 4),
        "tag_bits": bits,
        "candidates_per_parcel": round(candidates),
        "proposed_one_parcel_days": round(per_parcel_s / DAY_S, 2),
        "proposed_cores": args.cores,
        "pickup_parcels": args.parcels,
        "pickup_median_ms": round(statistics.median(latencies) * 1000, 1),
        "pickup_max_ms": round(latencies[-1] * 1000, 1),
        "pickup_mean_scrypts": round(statistics.mean(scrypts), 2),
        "wrong_code_median_ms": round(statistics.median(wrong) * 1000, 1),
        "wrong_code_max_ms": round(wrong[-1] * 1000, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
