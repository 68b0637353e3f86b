"""Who is calling: a carrier (by its API key) or the operator (the admin key).

Keys arrive as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Carrier
lookups are cached for a short time, since a key hash never changes meaning while
a carrier exists and the lookup would otherwise cost a round trip per request.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from cloud import errors
from cloud.api.services import Services, services
from cloud.carriers import carrier_for_key


class MissingApiKey(errors.ServiceError):
    status = 401
    code = "missing_api_key"


class InvalidApiKey(errors.ServiceError):
    status = 401
    code = "invalid_api_key"


class AdminOnly(errors.ServiceError):
    status = 403
    code = "admin_only"


class CarrierOnly(errors.ServiceError):
    status = 403
    code = "carrier_only"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. ``carrier_id`` is None for the admin, who sees every carrier's data."""

    carrier_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.carrier_id is None


class KeyCache:
    """Maps API keys to carrier ids for ``ttl`` seconds. Unknown keys are not cached."""

    def __init__(self, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, str]] = {}

    def get(self, key: str) -> str | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, carrier_id: str) -> None:
        if len(self._entries) > 10_000:  # bounded: drop everything rather than track LRU
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, carrier_id)


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise InvalidApiKey("use 'Authorization: Bearer <api key>'")
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


async def principal(request: Request, svc: Annotated[Services, Depends(services)]) -> Principal:
    key = _presented_key(request)
    if not key:
        raise MissingApiKey("this endpoint needs an API key")
    admin_key = svc.settings.admin_api_key
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(carrier_id=None)
    carrier_id = svc.key_cache.get(key)
    if carrier_id is None:
        async with svc.pool.connection() as conn:
            carrier_id = await carrier_for_key(conn, key)
        if carrier_id is None:
            raise InvalidApiKey("unknown API key")
        svc.key_cache.put(key, carrier_id)
    return Principal(carrier_id=carrier_id)


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_admin:
        raise AdminOnly("this endpoint needs the admin key")
    return who


async def carrier(who: Annotated[Principal, Depends(principal)]) -> str:
    if who.carrier_id is None:
        raise CarrierOnly("this endpoint acts for a carrier; use a carrier's API key")
    return who.carrier_id


AnyCaller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
CarrierId = Annotated[str, Depends(carrier)]


async def metrics_scraper(request: Request, svc: Annotated[Services, Depends(services)]) -> None:
    """Guards ``/metrics`` with ``LOCKER_METRICS_TOKEN`` when one is set (a bearer token that
    Prometheus sends with ``authorization: {credentials: ...}``), so that the fleet's figures are
    not public on an internet-facing API. Without a token set, /metrics is open (the demo, a
    scrape on a private network)."""
    token = svc.settings.metrics_token
    if not token:
        return
    key = _presented_key(request)
    if not key:
        raise MissingApiKey("/metrics needs the metrics token (LOCKER_METRICS_TOKEN)")
    if not hmac.compare_digest(key.encode(), token.encode()):
        raise InvalidApiKey("not the metrics token")
