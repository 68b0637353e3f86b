"""The FastAPI application: lifespan (database, background jobs), errors, routes.

`create_app` takes its collaborators (settings, clock, notification sender), so the
command line, the demo and the tests all build the same app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from cloud import metrics
from cloud.api import routes_admin, routes_carrier
from cloud.api.auth import KeyCache, metrics_scraper
from cloud.api.body_limit import BodySizeLimit
from cloud.api.services import Services
from cloud.api.unavailable import UNAVAILABLE, database_unavailable
from cloud.config import CloudSettings
from cloud.dispatch import Dispatcher, LoggingSender, NotificationSender, WebhookSender
from cloud.errors import ServiceError, TooManyAttempts
from cloud.fleet_health import FleetHealthRunner
from cloud.lifecycle import LifecycleRunner
from cloud.ops import actions as ops_actions
from cloud.ops import pages as ops_pages
from cloud.ops.guard import ConsoleRefusal
from cloud.parcels.batcher import AllocationBatcher
from cloud.store import database as db
from cloud.sync.keys import load_cloud_signer
from cloud.sync.presence import PresenceRule
from cloud.sync.worker import BrokerAddress, SyncWorker
from shared.clock import Clock, SystemClock
from shared.flood_gate import RateLimit

log = logging.getLogger(__name__)

_HTTP_CODES = {
    # The framework raises a 400 only when it cannot parse a body: not UTF-8, or JSON nested
    # deeper than the parser goes (what it calls "There was an error parsing the body").
    400: "malformed_json",
    404: "not_found",
    405: "method_not_allowed",
}


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or {}}},
    )


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    response = _error(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


# Fields whose refusal has a code of its own (the codes the API had before the schema held
# these rules): an unknown size, a string that is no code.
_FIELD_CODES = {
    "package_size": "invalid_size",
    "size": "invalid_size",
    "door_counts": "invalid_size",  # only for its keys
    "pickup_code": "invalid_code",
    "return_code": "invalid_code",
}


def _field_of(dotted: str) -> str:
    """The field a problem is about: ``doors.0.size`` -> ``size``; a bad key of
    ``door_counts`` (``door_counts.giant.[key]``) -> ``door_counts``."""
    parts = dotted.split(".")
    if "[key]" in parts and "door_counts" in parts:
        return "door_counts"
    return parts[-1]


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "field": ".".join(str(part) for part in e.get("loc", ()) if part != "body"),
            "problem": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    if any(p["type"] == "json_invalid" for p in problems):
        return _error(400, "malformed_json", "the request body is not valid JSON")
    codes = {_FIELD_CODES.get(_field_of(p["field"])) for p in problems}
    if len(codes) == 1 and (code := codes.pop()) is not None:
        message = problems[0]["problem"]
        return _error(422, code, f"{problems[0]['field']}: {message}", {"errors": problems})
    return _error(
        422, "validation_error", "the request does not match the API", {"errors": problems}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    if exc.status_code == 400:
        response = _error(400, code, "the request body is not valid UTF-8 JSON")
    else:
        response = _error(exc.status_code, code, str(exc.detail))
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers.

    Each route holds one method, and included routers hide theirs, so each method is asked
    of the routes as the router itself would (`matches`).
    """
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _error(500, "internal_error", "something went wrong on our side; it was logged")


def _make_sender(
    settings: CloudSettings, client: httpx.AsyncClient, clock: Clock
) -> NotificationSender:
    if settings.notification_sender == "webhook":
        return WebhookSender(client, settings.notification_webhook_url, clock)
    return LoggingSender()


def _make_sync_worker(
    settings: CloudSettings, pool: db.Pool, database_url: str, clock: Clock
) -> SyncWorker:
    assert settings.mqtt_url
    key_file, may_create = settings.cloud_key_path()
    return SyncWorker(
        pool,
        database_url=database_url,
        broker=BrokerAddress.list_from_urls(settings.mqtt_url, settings.mqtt_client_tls()),
        signer=load_cloud_signer(key_file, create=may_create),
        clock=clock,
        pickup_window=settings.pickup_window,
        shared_subscription=settings.mqtt_shared_subscription,
        share_group=settings.mqtt_share_group,
        topic_limit=RateLimit(settings.mqtt_rate_limit_per_s, settings.mqtt_rate_limit_burst),
        kiosk_limit=RateLimit(settings.mqtt_rate_limit_per_s, settings.mqtt_rate_limit_burst),
        key_max_age=settings.kiosk_key_max_age,
        key_grace=settings.kiosk_key_grace,
    )


def create_app(
    settings: CloudSettings,
    *,
    clock: Clock | None = None,
    sender: NotificationSender | None = None,
) -> FastAPI:
    """Builds the service. The database is opened (and migrated) when the app starts."""
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.database_url or await asyncio.to_thread(
            db.start_embedded_postgres, settings.data_dir
        )
        assert url
        await db.migrate(url)
        pool = await db.open_pool(
            url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            connection_wait=settings.db_pool_timeout_seconds,
        )
        allocator = AllocationBatcher(
            pool, workers=settings.allocation_batch_workers, max_batch=settings.allocation_batch_max
        )
        allocator.start()
        app.state.services = Services(
            settings=settings,
            pool=pool,
            clock=clock,
            key_cache=KeyCache(),
            allocator=allocator,
            database_url=url,
        )
        tasks: list[asyncio.Task[None]] = []
        async with httpx.AsyncClient(timeout=settings.notification_timeout_seconds) as client:
            if settings.run_background_jobs:
                runner = LifecycleRunner(
                    pool,
                    clock,
                    settings.lifecycle_interval_seconds,
                    change_retention=settings.change_retention,
                    code_secret_rotation=settings.code_secret_rotation,
                )
                dispatcher = Dispatcher(
                    pool,
                    sender or _make_sender(settings, client, clock),
                    clock,
                    settings.notification_interval_seconds,
                    settings.notification_max_attempts,
                )
                health = FleetHealthRunner(
                    pool, clock, PresenceRule.of(settings), settings.fleet_health_interval_seconds
                )
                tasks = [
                    asyncio.create_task(runner.run(), name="lifecycle"),
                    asyncio.create_task(dispatcher.run(), name="notifications"),
                    asyncio.create_task(health.run(), name="fleet-health"),
                ]
            app.state.sync_worker = None
            if settings.mqtt_url and settings.run_sync_worker:
                worker = _make_sync_worker(settings, pool, url, clock)
                app.state.sync_worker = worker
                tasks.append(asyncio.create_task(worker.run(), name="sync"))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await allocator.stop()
                await pool.close()

    app = FastAPI(
        title="Parcel locker allocation service",
        version="1.0",
        summary="Reserve locker doors for parcels, deposit, pick up, return.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last, so outermost: it also counts the 413s of BodySizeLimit.
    app.add_middleware(metrics.RequestMetrics)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, database_unavailable)
    app.include_router(routes_carrier.router)
    app.include_router(routes_admin.router)
    # The operations console: HTML for operators' browsers, outside the carrier API's schema.
    app.include_router(ops_pages.router)
    app.include_router(ops_actions.router)
    app.add_exception_handler(ConsoleRefusal, ops_pages.refusal_page)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_scraper)])
    async def prometheus_metrics() -> Response:
        # For the operators' Prometheus, not carriers: not in the carrier API's OpenAPI.
        svc: Services = app.state.services
        body = await metrics.exposition(svc.pool, svc.clock, PresenceRule.of(settings))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        # The process answers: what a load balancer checks (deploy/ha/haproxy), so that while
        # the database fails over the API's own 503 database_unavailable reaches the carrier
        # instead of "no server available". /healthz also asks the database.
        return {"status": "ok"}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        svc: Services = app.state.services
        await db.ping(svc.pool)
        return {"status": "ok"}

    return app
