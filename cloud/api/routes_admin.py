"""Operator endpoints: carriers, locations, doors, maintenance, kiosks' presence, remote
opening. All need the admin key."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, status

from cloud import carriers, doors, errors, locations
from cloud.api.auth import Admin
from cloud.api.location_view import location_view, open_alerts
from cloud.api.routes_carrier import webhook_secret_rotation
from cloud.api.schemas import (
    COMMON_ERRORS,
    AccessibleIn,
    AdminLocationOut,
    AlertOut,
    CarrierIdPath,
    CarrierIn,
    CarrierOut,
    DoorIn,
    DoorLabelIn,
    DoorNumberPath,
    DoorOut,
    DoorsIn,
    ErrorOut,
    LocationIdPath,
    LocationIn,
    LocationOut,
    LocationPatch,
    MaintenanceIn,
    RemoteCommandOut,
    RemoteOpenIn,
    WebhookSecretIn,
    WebhookSecretOut,
)
from cloud.api.services import Svc
from cloud.doors import DoorSpec
from cloud.sync.publisher import queue_remote_open
from shared.sizes import Dimensions, Size, SizeError

router = APIRouter(
    prefix="/api/v1/admin",
    responses=COMMON_ERRORS,
)


def _door_specs(body: list[DoorIn], counts: Mapping[Size, int] | None) -> list[DoorSpec]:
    try:
        specs = [
            DoorSpec(
                door_number=d.door_number,
                size=Size.parse(d.size),
                dimensions=None
                if d.dimensions is None
                else Dimensions(d.dimensions.length, d.dimensions.width, d.dimensions.height),
                label=d.label,
                column=d.column,
                row=d.row,
                accessible=d.accessible,
            )
            for d in body
        ]
        number = max((d.door_number for d in body), default=0)
        for size_name, count in sorted(
            (counts or {}).items(), key=lambda kv: Size.parse(kv[0]).rank
        ):
            for _ in range(count):
                number += 1
                specs.append(DoorSpec(door_number=number, size=Size.parse(size_name)))
    except SizeError as exc:
        raise errors.InvalidSize(str(exc)) from None
    return specs


@router.post("/carriers", status_code=status.HTTP_201_CREATED, responses={409: {"model": ErrorOut}})
async def create_carrier(body: CarrierIn, _: Admin, svc: Svc) -> CarrierOut:
    """Registers a carrier. The response holds its API key, which is never shown again."""
    secret = carriers.new_webhook_secret()
    async with svc.pool.connection() as conn:
        key = await carriers.create_carrier(
            conn,
            carrier_id=body.carrier_id,
            name=body.name,
            webhook_url=body.webhook_url,
            now=svc.clock.now(),
            webhook_secret=secret,
            state_events=body.state_webhooks,
        )
    return CarrierOut(
        carrier_id=body.carrier_id, name=body.name, api_key=key, webhook_secret=secret
    )


@router.post("/carriers/{carrier_id}/webhook-secret", responses={404: {"model": ErrorOut}})
async def rotate_webhook_secret(
    carrier_id: CarrierIdPath, _: Admin, svc: Svc, body: WebhookSecretIn | None = None
) -> WebhookSecretOut:
    """Sets or rotates a carrier's webhook secret (shown only here); the old one keeps signing
    beside it for ``overlap_hours``."""
    return await webhook_secret_rotation(svc, carrier_id, body)


@router.post(
    "/locations", status_code=status.HTTP_201_CREATED, responses={409: {"model": ErrorOut}}
)
async def create_location(body: LocationIn, _: Admin, svc: Svc) -> LocationOut:
    """Creates a location with its doors (listed, or counted per size), all or nothing."""
    specs = _door_specs(body.doors, body.door_counts)
    now = svc.clock.now()
    async with svc.pool.connection() as conn, conn.transaction():
        await locations.create_location(
            conn,
            location_id=body.location_id,
            name=body.name,
            address=body.address,
            latitude=body.latitude,
            longitude=body.longitude,
            timezone=body.timezone,
            operating_hours=body.operating_hours,
            now=now,
        )
        if specs:
            await doors.add_doors(conn, body.location_id, specs, now)
        row = await locations.get_location(conn, body.location_id)
    return LocationOut.model_validate(row)


@router.get("/locations/{location_id}", responses={404: {"model": ErrorOut}})
async def read_location(location_id: LocationIdPath, _: Admin, svc: Svc) -> AdminLocationOut:
    """The location with its change-log revision, each kiosk's presence and open alerts."""
    async with svc.pool.connection() as conn:
        row = await location_view(conn, svc, location_id, admin=True)
        row["open_alerts"] = await open_alerts(conn, location_id)
    return AdminLocationOut.model_validate(row)


@router.get("/locations/{location_id}/alerts", responses={404: {"model": ErrorOut}})
async def list_alerts(location_id: LocationIdPath, _: Admin, svc: Svc) -> list[AlertOut]:
    """Unresolved alerts the location's kiosks raised (tamper, left open, ...), newest first."""
    async with svc.pool.connection() as conn:
        await locations.get_location(conn, location_id)  # 404 for an unknown location
        rows = await open_alerts(conn, location_id)
    return [AlertOut.model_validate(r) for r in rows]


@router.post(
    "/locations/{location_id}/doors/{door_number}/open",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"model": ErrorOut}},
)
async def remote_open(
    location_id: LocationIdPath, door_number: DoorNumberPath, body: RemoteOpenIn, _: Admin, svc: Svc
) -> RemoteCommandOut:
    """Asks the location's kiosk to open a door: a signed command that lives 30 s."""
    async with svc.pool.connection() as conn:
        row = await queue_remote_open(
            conn,
            location_id=location_id,
            door_number=door_number,
            reason=body.reason,
            requested_by=body.requested_by,
            now=svc.clock.now(),
        )
    return RemoteCommandOut.model_validate(row)


@router.patch("/locations/{location_id}", responses={404: {"model": ErrorOut}})
async def update_location(
    location_id: LocationIdPath, body: LocationPatch, _: Admin, svc: Svc
) -> LocationOut:
    """Renames, re-times or (de)activates a location. Only the fields given change."""
    async with svc.pool.connection() as conn:
        row = await locations.update_location(
            conn, location_id, body.model_dump(exclude_unset=True)
        )
    return LocationOut.model_validate(row)


@router.post(
    "/locations/{location_id}/doors",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def add_doors(
    location_id: LocationIdPath, body: DoorsIn, _: Admin, svc: Svc
) -> list[DoorOut]:
    async with svc.pool.connection() as conn:
        await doors.add_doors(conn, location_id, _door_specs(body.doors, None), svc.clock.now())
        rows = await doors.list_doors(conn, location_id)
    return [DoorOut.model_validate(r) for r in rows]


@router.get("/locations/{location_id}/doors", responses={404: {"model": ErrorOut}})
async def list_doors(location_id: LocationIdPath, _: Admin, svc: Svc) -> list[DoorOut]:
    async with svc.pool.connection() as conn:
        rows = await doors.list_doors(conn, location_id)
    return [DoorOut.model_validate(r) for r in rows]


@router.put(
    "/locations/{location_id}/doors/{door_number}/maintenance",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def set_maintenance(
    location_id: LocationIdPath,
    door_number: DoorNumberPath,
    _: Admin,
    svc: Svc,
    body: MaintenanceIn | None = None,
) -> DoorOut:
    """Takes a door out of service. A reservation on it moves to another free door."""
    async with svc.pool.connection() as conn:
        row = await doors.set_maintenance(
            conn, location_id, door_number, (body or MaintenanceIn()).reason, svc.clock.now()
        )
    return DoorOut.model_validate(row)


@router.put(
    "/locations/{location_id}/doors/{door_number}/accessible",
    responses={404: {"model": ErrorOut}},
)
async def set_accessible(
    location_id: LocationIdPath,
    door_number: DoorNumberPath,
    body: AccessibleIn,
    _: Admin,
    svc: Svc,
) -> DoorOut:
    """Flags a door as within reach (or not), for allocations asking for an accessible door."""
    async with svc.pool.connection() as conn:
        row = await doors.set_accessible(
            conn, location_id, door_number, body.accessible, svc.clock.now()
        )
    return DoorOut.model_validate(row)


@router.put(
    "/locations/{location_id}/doors/{door_number}/label",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def relabel_door(
    location_id: LocationIdPath,
    door_number: DoorNumberPath,
    body: DoorLabelIn,
    _: Admin,
    svc: Svc,
) -> DoorOut:
    """Gives a door another label (``locker_number``); its kiosk gets it in the change log."""
    async with svc.pool.connection() as conn:
        row = await doors.relabel(conn, location_id, door_number, body.label, svc.clock.now())
    return DoorOut.model_validate(row)


@router.delete(
    "/locations/{location_id}/doors/{door_number}/maintenance",
    responses={404: {"model": ErrorOut}},
)
async def clear_maintenance(
    location_id: LocationIdPath, door_number: DoorNumberPath, _: Admin, svc: Svc
) -> DoorOut:
    """Puts a door back in service."""
    async with svc.pool.connection() as conn:
        row = await doors.clear_maintenance(conn, location_id, door_number, svc.clock.now())
    return DoorOut.model_validate(row)
