"""The service's Prometheus metrics, served at ``/metrics`` (docs/operations.md lists them).

Two kinds:

- Counters and histograms of what this process did (requests, allocations, kiosk events,
  notification sends), module-level on prometheus-client's default registry as the library
  intends, incremented where the thing happens. Each process counts its own; Prometheus sums
  the nodes.
- Gauges of the fleet's state (doors, kiosks, outbox, lag, alerts), read from PostgreSQL at each
  scrape (`cloud.store.fleet_stats`) into a registry of that scrape alone, so that every node
  reports the same, current figures and a location that is no longer behind drops out.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.store import fleet_stats
from cloud.store.database import Pool
from cloud.sync.presence import PresenceRule
from shared.clock import Clock

HTTP_REQUESTS = Counter(
    "locker_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "locker_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ALLOCATIONS = Counter(
    "locker_allocations_total",
    "Allocation requests decided, by outcome (reserved, existing, or the refusal's code).",
    ["outcome"],
)
ALLOCATION_BATCH = Histogram(
    "locker_allocation_batch_size",
    "Allocation requests decided together in one transaction (cloud.parcels.batcher).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
NOTIFICATION_FAILURES = Counter(
    "locker_notification_send_failures_total",
    "Failed tries to send a notification, by whether the failure was for good.",
    ["final"],
)
KIOSK_EVENTS = Counter(
    "locker_kiosk_events_total",
    "Kiosk events received and recorded, by outcome, and by refusal reason when refused.",
    ["outcome", "reason"],
)

# What a request that matched no route is counted as: one series for every probe of a missing
# path, rather than one per path a scanner tries.
UNMATCHED_ROUTE = "unmatched"


class RequestMetrics:
    """Pure ASGI middleware: counts each HTTP response and times it, by route template.

    The route's template (``/api/v1/allocations/{allocation_id}``), never the raw path, is the
    label: raw paths carry ids and would make a series per parcel.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before starting a response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router records the matched route in the scope it was given (this one).
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            method = scope["method"]
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)


async def exposition(pool: Pool, clock: Clock, presence: PresenceRule) -> bytes:
    """The text of a scrape: this process's counters, then the fleet's gauges read now."""
    async with pool.connection() as conn:
        stats = await fleet_stats.read(conn, now=clock.now(), presence=presence)
    return generate_latest() + generate_latest(fleet_registry(stats))


def fleet_registry(stats: fleet_stats.FleetStats) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    doors = Gauge("locker_doors", "Doors by state and size.", ["status", "size"], registry=registry)
    for (status, size), n in stats.doors.items():
        doors.labels(status, size).set(n)
    kiosks = Gauge(
        "locker_kiosks",
        "Kiosks by shown presence (online, stale, offline, never_seen).",
        ["status"],
        registry=registry,
    )
    for status in ("online", "stale", "offline", "never_seen"):
        kiosks.labels(status).set(stats.kiosks.get(status, 0))
    outbox = Gauge(
        "locker_notification_outbox",
        "Notifications waiting to be sent (pending) or given up on (failed).",
        ["status"],
        registry=registry,
    )
    for status in ("pending", "failed"):
        outbox.labels(status).set(stats.notifications.get(status, 0))
    awaiting = Gauge(
        "locker_parcels_awaiting_collection",
        "Parcels in a door waiting for a courier: expired deliveries and deposited returns.",
        ["kind"],
        registry=registry,
    )
    for kind in ("delivery", "return"):
        awaiting.labels(kind).set(stats.awaiting_collection.get(kind, 0))
    lag = Gauge(
        "locker_location_changelog_lag",
        "Revisions of a location's change log its least caught-up kiosk has not reported"
        " applying (only locations that are behind are listed).",
        ["location"],
        registry=registry,
    )
    for location_id, revisions in stats.lagging_locations.items():
        lag.labels(location_id).set(revisions)
    Gauge(
        "locker_locations_behind",
        "Locations with a kiosk behind the change log.",
        registry=registry,
    ).set(len(stats.lagging_locations))
    alerts = Gauge(
        "locker_open_alerts",
        "Unresolved fleet alerts, by kind and location (only where one is open).",
        ["kind", "location"],
        registry=registry,
    )
    for (kind, location_id), n in stats.open_alerts.items():
        alerts.labels(kind, location_id).set(n)
    return registry
