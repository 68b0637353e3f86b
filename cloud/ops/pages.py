"""The console's pages: login, the fleet list, a location, the parcels to collect.

Server-rendered (Jinja2, autoescaped). The parts that change on their own (the fleet table, a
location's door grid and alerts) are also served as fragments, which the page's script polls
every few seconds and swaps in, so an operator sees a kiosk go stale or a door fault appear
without reloading; the action forms sit outside those parts, so a refresh never eats what
someone is typing.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from cloud import errors, locations
from cloud.api.services import Services, Svc
from cloud.config import CloudSettings
from cloud.ops import accounts, charts
from cloud.ops.guard import COOKIE, LOGIN_CSRF_COOKIE, ConsoleRefusal, Operator, SignedForm
from cloud.store import console, operators
from cloud.store.kiosks import KioskPresence
from cloud.sync import presence

PAGE_SIZE = 50

_HERE = Path(str(resources.files("cloud.ops")))
templates = Jinja2Templates(directory=_HERE / "templates")


def duration(span: timedelta) -> str:
    """A time in a state as people say it: "now", "12 min", "5 h", "3 d"."""
    seconds = max(0, int(span.total_seconds()))  # a clock a little ahead is not "in -2 min"
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


templates.env.filters["duration"] = duration
router = APIRouter(prefix="/ops", include_in_schema=False)


def _shown(svc: Services, kiosks: list[KioskPresence], now: datetime) -> list[KioskPresence]:
    rule = presence.PresenceRule.of(svc.settings)
    return [rule.shown(k, now) for k in kiosks]


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"refresh_ms": int(_settings(request).ops_refresh_seconds * 1000), **context},
        status_code=status_code,
        # Pages hold parcel ids and door states: no cache, no framing by other sites.
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
                " frame-ancestors 'none'; form-action 'self'"
            ),
            "Referrer-Policy": "same-origin",
        },
    )


def _settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.services.settings
    return settings


async def refusal_page(request: Request, exc: Exception) -> Response:
    """The answer to a `ConsoleRefusal`: the login page for a browser not logged in (a GET),
    otherwise a page that says what happened and what to do."""
    assert isinstance(exc, ConsoleRefusal)
    if exc.code == "not_logged_in" and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ops/login?next={quote(target)}", status_code=303)
    return render(
        request,
        "refusal.html",
        {"code": exc.code, "message": exc.message, "session": None},
        status_code=exc.status,
    )


def _safe_next(target: str | None) -> str:
    # Only back into the console: never an open redirect to another site.
    if target and target.startswith("/ops/") and not target.startswith("//"):
        return target
    return "/ops/"


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", {"login_csrf": token, "next": _safe_next(next), "session": None}
    )
    _cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=1800)
    return response


@router.post("/login")
async def login(
    request: Request,
    svc: Svc,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    login_csrf: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/ops/",
) -> Response:
    # The login form's own CSRF check (double submit: the cookie and the field must agree), so
    # another site cannot log a browser into an account of its choosing.
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, login_csrf):
        raise ConsoleRefusal(
            403, "csrf_failed", "The login form expired. Reload the page and log in again."
        )
    try:
        _, session = await accounts.log_in(svc.pool, username.strip(), password, svc.clock.now())
    except accounts.LoginRefused as refused:
        message = "Wrong username or password."
        if refused.locked_until is not None:
            message = (
                "Too many wrong passwords: this account is locked until"
                f" {refused.locked_until:%H:%M} UTC. An admin can unlock it sooner."
            )
        token = secrets.token_urlsafe(24)
        page = render(
            request,
            "login.html",
            {"login_csrf": token, "next": _safe_next(next), "error": message, "session": None},
            status_code=401,
        )
        _cookie(request, page, LOGIN_CSRF_COOKIE, token, max_age=1800)
        return page
    response = RedirectResponse(_safe_next(next), status_code=303)
    _cookie(
        request,
        response,
        COOKIE,
        session.token,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ops")
    return response


@router.post("/logout")
async def logout(request: Request, svc: Svc, _: SignedForm) -> Response:
    await accounts.log_out(svc.pool, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/ops/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ops")
    return response


def _cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ops",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# The fleet.


async def _fleet_context(svc: Services, q: str | None, page: int) -> dict[str, Any]:
    query = (q or "").strip() or None
    async with svc.pool.connection() as conn:
        total, rows = await console.fleet(
            conn, query=query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    now = svc.clock.now()
    shown = []
    for row in rows:
        kiosks = _shown(svc, row.kiosks, now)
        shown.append({"row": row, "kiosks": kiosks, "status": presence.summary_status(kiosks)})
    pages = max(1, -(-total // PAGE_SIZE))
    return {"rows": shown, "q": query or "", "page": page, "pages": pages, "total": total}


@router.get("/")
async def fleet_page(
    request: Request,
    svc: Svc,
    session: Operator,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    context = await _fleet_context(svc, q, page)
    return render(request, "fleet.html", {"session": session, **context})


@router.get("/fragments/fleet")
async def fleet_fragment(
    request: Request,
    svc: Svc,
    session: Operator,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    context = await _fleet_context(svc, q, page)
    return render(request, "fleet_table.html", {"session": session, **context})


# A location.


async def _live_context(svc: Services, location_id: str) -> dict[str, Any]:
    now = svc.clock.now()
    async with svc.pool.connection() as conn:
        try:
            location = await locations.get_location(conn, location_id)
        except errors.ServiceError as exc:
            raise ConsoleRefusal(exc.status, exc.code, exc.message) from None
        doors = await console.door_grid(conn, location_id)
        alerts = await console.alerts(conn, location_id, 50)
        kiosks = (await console.kiosks_of(conn, [location_id])).get(location_id, [])
    shown = _shown(svc, kiosks, now)
    return {
        "location": location,
        "doors": doors,
        "alerts": alerts,
        "kiosks": shown,
        "status": presence.summary_status(shown),
        "now": now,
    }


@router.get("/locations/{location_id}")
async def location_page(
    request: Request,
    location_id: str,
    svc: Svc,
    session: Operator,
    notice: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    context = await _live_context(svc, location_id)
    now = context["now"]
    async with svc.pool.connection() as conn:
        audit = await operators.recent_actions(conn, location_id, 30)
        events = await console.kiosk_events(conn, location_id, 30)
        to_collect = await console.to_collect(conn, location_id, 500)
        per_hour = await console.allocations_per_hour(
            conn, location_id, now - timedelta(days=1), now
        )
        occupancy = await console.occupancy_by_hour(conn, location_id, now - timedelta(days=1), now)
        dwell = await console.dwell_hours(conn, location_id, now - timedelta(days=30), 5000)
    plots = {
        "allocations": charts.allocations_per_hour(per_hour),
        "occupancy": charts.occupancy(occupancy, len(context["doors"])),
        "dwell": charts.dwell_time(dwell),
    }
    return render(
        request,
        "location.html",
        {
            "session": session,
            "audit": audit,
            "events": events,
            "to_collect": to_collect,
            "plots": plots,
            "notice": notice,
            "can_act": accounts.Role(session.role).allows(accounts.Role.SUPPORT),
            **context,
        },
    )


@router.get("/fragments/locations/{location_id}")
async def location_fragment(
    request: Request, location_id: str, svc: Svc, session: Operator
) -> Response:
    context = await _live_context(svc, location_id)
    return render(request, "location_live.html", {"session": session, **context})


@router.get("/collect")
async def collect_page(request: Request, svc: Svc, session: Operator) -> Response:
    async with svc.pool.connection() as conn:
        parcels = await console.to_collect(conn, None, 1000)
    by_location: dict[str, list[console.ToCollect]] = {}
    for parcel in parcels:
        by_location.setdefault(parcel.location_id, []).append(parcel)
    return render(
        request,
        "collect.html",
        {
            "session": session,
            "by_location": by_location,
            "now": svc.clock.now(),
            "can_act": accounts.Role(session.role).allows(accounts.Role.SUPPORT),
        },
    )


# Static files: the console's own, and plotly.js from the plotly package (not a CDN).

_STATIC = {"ops.css": "text/css", "ops.js": "text/javascript"}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name == "plotly.min.js":
        path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
        return FileResponse(path, media_type="text/javascript", headers=_CACHE)
    if name not in _STATIC:
        raise ConsoleRefusal(404, "not_found", "No such file.")
    return FileResponse(_HERE / "static" / name, media_type=_STATIC[name], headers=_CACHE)


_CACHE = {"Cache-Control": "public, max-age=3600"}
