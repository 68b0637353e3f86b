"""What an operator can do from the console, each recorded in ``operator_actions`` with their
name (and, for a door opening, carried to the kiosk as the command's ``requested_by``).

Every action needs the support role and the session's CSRF token (`cloud.ops.guard.Acting`);
each answers with a redirect back to the page it came from, carrying a notice of what was done,
so that reloading the page does not repeat the action.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse

from cloud import doors, errors
from cloud.api.services import Services, Svc
from cloud.ops.guard import Acting, ConsoleRefusal
from cloud.parcels import pickup_changes
from cloud.parcels.lookup import allocation_for
from cloud.store import console, operators
from cloud.store.database import Conn
from cloud.store.operators import Session
from cloud.store.transaction import unit
from cloud.sync.publisher import queue_remote_open

router = APIRouter(prefix="/ops", include_in_schema=False)

Reason = Annotated[str, Form(min_length=1, max_length=200)]
DoorField = Annotated[int, Form(gt=0)]


def _back(location_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(
        f"/ops/locations/{quote(location_id, safe='')}?notice={quote(notice)}", status_code=303
    )


def _clean(reason: str) -> str:
    text = " ".join(reason.split())
    if not text or "\x00" in text:
        raise ConsoleRefusal(422, "reason_required", "Say why, in a few words, and try again.")
    return text


async def _audit(
    conn: Conn,
    session: Session,
    svc: Services,
    action: str,
    location_id: str,
    door_number: int | None,
    detail: dict[str, Any],
) -> None:
    await operators.record_action(
        conn,
        username=session.username,
        action=action,
        location_id=location_id,
        door_number=door_number,
        detail=detail,
        now=svc.clock.now(),
    )


def requested_by(session: Session) -> str:
    """How a console operator is named on a remote door command and in the kiosk's audit."""
    return f"operator:{session.username}"


@router.post("/locations/{location_id}/open")
async def open_door(
    location_id: str, door: DoorField, reason: Reason, session: Acting, svc: Svc
) -> RedirectResponse:
    door_number = door
    why = _clean(reason)
    async with svc.pool.connection() as conn, conn.transaction():
        try:
            command = await queue_remote_open(
                conn,
                location_id=location_id,
                door_number=door_number,
                reason=why,
                requested_by=requested_by(session),
                now=svc.clock.now(),
            )
        except errors.ServiceError as exc:
            raise ConsoleRefusal(exc.status, exc.code, exc.message) from None
        await _audit(
            conn,
            session,
            svc,
            "remote_open",
            location_id,
            door_number,
            {"reason": why, "command_id": str(command.command_id)},
        )
    return _back(location_id, f"Door {door_number}: opening sent to the kiosk.")


@router.post("/locations/{location_id}/collect-all")
async def open_everything_due(
    location_id: str, reason: Reason, session: Acting, svc: Svc
) -> RedirectResponse:
    """Opens every door whose parcel waits for a courier (expired deliveries, returns)."""
    why = _clean(reason)
    async with svc.pool.connection() as conn, conn.transaction():
        due = await console.to_collect(conn, location_id, 1000)
        if not due:
            return _back(location_id, "Nothing to collect here: no door opened.")
        for parcel in due:
            await queue_remote_open(
                conn,
                location_id=location_id,
                door_number=parcel.door_number,
                reason=f"collection: {why}",
                requested_by=requested_by(session),
                now=svc.clock.now(),
            )
        await _audit(
            conn,
            session,
            svc,
            "bulk_open_for_collection",
            location_id,
            None,
            {
                "reason": why,
                "doors": [p.door_number for p in due],
                "allocations": [str(p.allocation_id) for p in due],
            },
        )
    lockers = ", ".join(p.label for p in due)
    return _back(location_id, f"Opening {len(due)} doors for collection: {lockers}.")


@router.post("/locations/{location_id}/maintenance")
async def maintenance(
    location_id: str,
    door: DoorField,
    session: Acting,
    svc: Svc,
    on: Annotated[bool, Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse:
    now = svc.clock.now()
    door_number = door
    async with svc.pool.connection() as conn, conn.transaction():
        try:
            if on:
                why = _clean(reason)
                await doors.set_maintenance(conn, location_id, door_number, why, now)
            else:
                why = None
                await doors.clear_maintenance(conn, location_id, door_number, now)
        except errors.ServiceError as exc:
            raise ConsoleRefusal(exc.status, exc.code, exc.message) from None
        await _audit(
            conn,
            session,
            svc,
            "maintenance_on" if on else "maintenance_off",
            location_id,
            door_number,
            {"reason": why},
        )
    state = "out of service" if on else "back in service"
    return _back(location_id, f"Door {door_number} is {state}.")


@router.post("/alerts/clear")
async def clear_alert(
    alert: Annotated[int, Form(gt=0)], resolution: Reason, session: Acting, svc: Svc
) -> RedirectResponse:
    """Marks a fault dealt with (a tamper checked, a door found shut), with what was found."""
    why = _clean(resolution)
    async with svc.pool.connection() as conn, conn.transaction():
        alert_id = alert
        cleared = await console.resolve_alert(
            conn, alert_id, by=session.username, resolution=why, now=svc.clock.now()
        )
        if cleared is None:
            raise ConsoleRefusal(
                404, "alert_not_found", "That alert is already cleared, or there is no such alert."
            )
        await _audit(
            conn,
            session,
            svc,
            "alert_cleared",
            cleared.location_id,
            cleared.door_number,
            {"alert_id": alert_id, "kind": cleared.kind, "resolution": why},
        )
    return _back(cleared.location_id, f"Alert {cleared.kind} cleared.")


@router.post("/locations/{location_id}/reissue-code")
async def reissue_code(
    location_id: str,
    allocation: Annotated[uuid.UUID, Form()],
    reason: Reason,
    session: Acting,
    svc: Svc,
) -> RedirectResponse:
    """A new pickup code for a deposited parcel's customer (the carrier API's re-issue): the old
    code stops working at once, at the kiosk too; the new one goes to the customer only, never
    to the operator's screen."""
    why = _clean(reason)
    async with svc.pool.connection() as conn, conn.transaction():
        try:
            async with unit(conn, svc.clock.now()) as work:
                found = await allocation_for(conn, allocation, None)
                if found.location_id != location_id:
                    raise errors.AllocationNotFound(f"no allocation {allocation} here")
                await pickup_changes.reissue_code(work, found, svc.settings.pickup_change_limits)
        except errors.ServiceError as exc:
            raise ConsoleRefusal(exc.status, exc.code, exc.message) from None
        await _audit(
            conn,
            session,
            svc,
            "pickup_code_reissued",
            location_id,
            None,
            {"reason": why, "allocation_id": str(allocation), "package_id": found.package_id},
        )
    return _back(
        location_id, f"Parcel {found.package_id}: a new pickup code was sent to the customer."
    )
