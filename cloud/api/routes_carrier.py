"""Carrier endpoints: allocations, deposit, pickup, returns, nearby locations."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from cloud import carriers, errors, locations
from cloud.api.auth import AnyCaller, CarrierId
from cloud.api.location_view import location_view
from cloud.api.schemas import (
    COMMON_ERRORS,
    AllocationIn,
    AllocationOut,
    CancelIn,
    CapacityOut,
    DeliveryOut,
    DepositIn,
    ErrorOut,
    ExtendIn,
    LocationIdPath,
    LocationOut,
    NearbyOut,
    OpenedDoor,
    PickupIn,
    PickupOut,
    RedirectIn,
    ReturnDropOffIn,
    ReturnIn,
    ReturnOut,
    WebhookSecretIn,
    WebhookSecretOut,
)
from cloud.api.services import Svc
from cloud.api.sizing import resolve_size
from cloud.parcels import deposit as deposits
from cloud.parcels import finish, guessing, pickup_changes, returns
from cloud.parcels import pickup as pickups
from cloud.parcels import redirect as redirects
from cloud.parcels.lookup import allocation_for
from cloud.parcels.requests import AllocationRequest, ReturnRequest
from cloud.store import doors as store_doors
from cloud.store import notifications as store_notifications
from cloud.store.records import Return
from cloud.store.transaction import unit
from shared.sizes import Size
from shared.states import AllocationStatus

router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS)


@router.post(
    "/allocations",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": AllocationOut, "description": "a retry: the existing allocation"},
        404: {"model": ErrorOut},
        409: {
            "model": ErrorOut,
            "description": "location_full (with alternatives within alternatives_within_km),"
            " no_accessible_door, location_inactive, idempotency_conflict",
        },
        422: {"model": ErrorOut},
    },
)
async def create_allocation(
    body: AllocationIn, carrier_id: CarrierId, svc: Svc, response: Response
) -> AllocationOut:
    """Reserves the smallest free door that fits the package, for the reservation hold."""
    size, dims = resolve_size(body)
    request = AllocationRequest(
        location_id=body.location_id,
        package_id=body.package_id,
        order_id=body.order_id,
        customer_id=body.customer_id,
        size=size,
        dimensions=dims,
        accessible=body.accessible,
    )
    try:
        reserved, created = await svc.allocator.reserve(
            carrier_id=carrier_id,
            request=request,
            now=svc.clock.now(),
            hold=svc.settings.reservation_hold,
        )
    except errors.LocationFull as exc:
        async with svc.pool.connection() as conn:
            exc.details["nearest"] = await locations.nearest_alternatives(
                conn, body.location_id, size, within_km=body.alternatives_within_km
            )
            exc.details["within_km"] = body.alternatives_within_km
        raise
    if not created:
        response.status_code = status.HTTP_200_OK
    return AllocationOut.of(reserved)


@router.get("/allocations/{allocation_id}", responses={404: {"model": ErrorOut}})
async def read_allocation(allocation_id: uuid.UUID, who: AnyCaller, svc: Svc) -> AllocationOut:
    async with svc.pool.connection() as conn:
        found = await allocation_for(conn, allocation_id, who.carrier_id, lock=False)
    return AllocationOut.of(found)


@router.post(
    "/allocations/{allocation_id}/deposit",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def deposit(
    allocation_id: uuid.UUID, body: DepositIn, who: AnyCaller, svc: Svc
) -> AllocationOut:
    """The driver put the parcel in; the scanned barcode must be the allocation's package."""
    async with svc.pool.connection() as conn, unit(conn, svc.clock.now()) as work:
        found = await allocation_for(conn, allocation_id, who.carrier_id)
        deposited = await deposits.deposit_by_driver(
            work,
            found,
            driver_id=body.driver_id,
            scan_code=body.scan_code,
            window=svc.settings.pickup_window,
        )
    return AllocationOut.of(deposited)


@router.post(
    "/allocations/{allocation_id}/cancel",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def cancel(
    allocation_id: uuid.UUID, who: AnyCaller, svc: Svc, body: CancelIn | None = None
) -> AllocationOut:
    """Cancels a reservation before deposit and frees its door. Idempotent."""
    async with svc.pool.connection() as conn:
        async with unit(conn, svc.clock.now()) as work:
            found = await allocation_for(conn, allocation_id, who.carrier_id)
            await finish.cancel(work, found, (body or CancelIn()).reason)
        return AllocationOut.of(await allocation_for(conn, allocation_id, None, lock=False))


@router.post(
    "/allocations/{allocation_id}/collect",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def collect(allocation_id: uuid.UUID, who: AnyCaller, svc: Svc) -> AllocationOut:
    """Staff or the carrier emptied the door (expired parcel, return, recall). Idempotent."""
    async with svc.pool.connection() as conn:
        async with unit(conn, svc.clock.now()) as work:
            await finish.collect(work, await allocation_for(conn, allocation_id, who.carrier_id))
        return AllocationOut.of(await allocation_for(conn, allocation_id, None, lock=False))


@router.post(
    "/allocations/{allocation_id}/redirect",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def redirect_allocation(
    allocation_id: uuid.UUID, body: RedirectIn, who: AnyCaller, svc: Svc
) -> AllocationOut:
    """Moves a reserved parcel to another location before deposit: a door and the customer's
    code there; the old door is freed. ``409 location_full`` lists alternatives near the new
    location."""
    async with svc.pool.connection() as conn:
        try:
            async with unit(conn, svc.clock.now()) as work:
                found = await allocation_for(conn, allocation_id, who.carrier_id)
                await redirects.redirect(work, found, body.location_id)
        except errors.LocationFull as exc:
            exc.details["nearest"] = await locations.nearest_alternatives(
                conn, body.location_id, found.size
            )
            raise
        return AllocationOut.of(await allocation_for(conn, allocation_id, None, lock=False))


@router.post(
    "/allocations/{allocation_id}/pickup-code",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def reissue_pickup_code(allocation_id: uuid.UUID, who: AnyCaller, svc: Svc) -> AllocationOut:
    """Gives a deposited parcel's customer a new pickup code; the old one stops working at once
    (at the kiosk too, once it applied the change). The customer is told (``code_reissued``)."""
    async with svc.pool.connection() as conn:
        async with unit(conn, svc.clock.now()) as work:
            found = await allocation_for(conn, allocation_id, who.carrier_id)
            await pickup_changes.reissue_code(work, found, svc.settings.pickup_change_limits)
        return AllocationOut.of(await allocation_for(conn, allocation_id, None, lock=False))


@router.post(
    "/allocations/{allocation_id}/extend",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def extend_pickup_deadline(
    allocation_id: uuid.UUID, body: ExtendIn, who: AnyCaller, svc: Svc
) -> AllocationOut:
    """Moves a deposited parcel's pickup deadline later (limited in count and lateness). The
    customer is told (``deadline_extended``)."""
    async with svc.pool.connection() as conn:
        async with unit(conn, svc.clock.now()) as work:
            found = await allocation_for(conn, allocation_id, who.carrier_id)
            await pickup_changes.extend_deadline(
                work, found, body.pickup_expires_at, svc.settings.pickup_change_limits
            )
        return AllocationOut.of(await allocation_for(conn, allocation_id, None, lock=False))


@router.post(
    "/pickup",
    responses={
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
        410: {"model": ErrorOut},
        422: {"model": ErrorOut},
        429: {"model": ErrorOut, "description": "too_many_attempts (with Retry-After)"},
    },
)
async def pickup(body: PickupIn, who: AnyCaller, svc: Svc) -> PickupOut:
    """Opens every deposited parcel of a pickup code at its location. A code works once.

    Failed attempts are limited per carrier and per location (429 ``too_many_attempts``).
    """
    now = svc.clock.now()
    async with (
        svc.pool.connection() as conn,
        guessing.guarded_attempt(
            conn,
            svc.settings.pickup_guess_limits,
            carrier_id=who.carrier_id,
            location_id=body.location_id,
            now=now,
        ),
        unit(conn, now) as work,
    ):
        opened = await pickups.pick_up(
            work,
            location_id=body.location_id,
            code_text=body.pickup_code,
            carrier_id=who.carrier_id,
        )
    return PickupOut(
        location_id=body.location_id,
        locker_numbers=[a.door_label for a in opened],
        opened=[
            OpenedDoor(
                allocation_id=a.allocation_id,
                package_id=a.package_id,
                locker_number=a.door_label,
                door_number=a.door_number,
            )
            for a in opened
        ],
    )


def _return_out(found: Return) -> ReturnOut:
    a = found.allocation
    return ReturnOut(
        return_id=found.return_id,
        allocation_id=a.allocation_id,
        status=a.status,
        location_id=a.location_id,
        address=a.address,
        locker_number=a.door_label,
        door_number=a.door_number,
        order_id=a.order_id,
        customer_id=a.customer_id,
        return_code=a.pickup_code,
        expires_at=a.reservation_expires_at if a.status is AllocationStatus.RESERVED else None,
    )


@router.post(
    "/returns",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ReturnOut, "description": "a retry: the existing return"},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
async def create_return(
    body: ReturnIn, carrier_id: CarrierId, svc: Svc, response: Response
) -> ReturnOut:
    """Reserves a door for a customer's return and issues its one-time return code."""
    size, _ = resolve_size(body)
    request = ReturnRequest(
        location_id=body.location_id,
        order_id=body.order_id,
        customer_id=body.customer_id,
        size=size,
        reason=body.reason,
    )
    async with svc.pool.connection() as conn:
        try:
            made, created = await returns.create_return(
                conn,
                carrier_id=carrier_id,
                request=request,
                now=svc.clock.now(),
                hold=svc.settings.reservation_hold,
            )
        except errors.LocationFull as exc:
            exc.details["nearest"] = await locations.nearest_alternatives(
                conn, body.location_id, size
            )
            raise
    if not created:
        response.status_code = status.HTTP_200_OK
    return _return_out(made)


@router.post(
    "/returns/drop-off",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 410: {"model": ErrorOut}},
)
async def drop_off_return(body: ReturnDropOffIn, who: AnyCaller, svc: Svc) -> AllocationOut:
    """The customer put the return in its door (what an online kiosk reports)."""
    async with svc.pool.connection() as conn, unit(conn, svc.clock.now()) as work:
        dropped = await returns.drop_off(
            work,
            location_id=body.location_id,
            code_text=body.return_code,
            carrier_id=who.carrier_id,
        )
    return AllocationOut.of(dropped)


@router.get("/locations", responses={422: {"model": ErrorOut}})
async def nearby_locations(
    who: AnyCaller,
    svc: Svc,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lng: Annotated[float, Query(ge=-180, le=180)],
    size: Size | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> NearbyOut:
    """The nearest active locations with a free door (of ``size`` or larger), nearest first."""
    async with svc.pool.connection() as conn:
        found = await locations.nearest_with_free_doors(
            conn, latitude=lat, longitude=lng, size=size, limit=limit
        )
    return NearbyOut.model_validate({"locations": found})


@router.get("/webhooks/deliveries")
async def webhook_deliveries(
    carrier_id: CarrierId, svc: Svc, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeliveryOut]:
    """The carrier's delivery log, newest first: each notification, its status (``pending``,
    ``sent``, ``failed``, ``cancelled``), attempts, last error and next try."""
    async with svc.pool.connection() as conn:
        rows = await store_notifications.deliveries(conn, carrier_id, limit)
    return [DeliveryOut.model_validate(r) for r in rows]


@router.post("/webhooks/secret")
async def rotate_webhook_secret(
    carrier_id: CarrierId, svc: Svc, body: WebhookSecretIn | None = None
) -> WebhookSecretOut:
    """Gives the carrier a new webhook secret, shown only in this answer. The old one keeps
    signing beside it (a second ``v1`` in ``Locker-Signature``) for ``overlap_hours``."""
    return await webhook_secret_rotation(svc, carrier_id, body)


async def webhook_secret_rotation(
    svc: Svc, carrier_id: str, body: WebhookSecretIn | None
) -> WebhookSecretOut:
    overlap = timedelta(hours=(body or WebhookSecretIn()).overlap_hours)
    async with svc.pool.connection() as conn:
        secret, until = await carriers.rotate_webhook_secret(
            conn, carrier_id, svc.clock.now(), overlap
        )
    return WebhookSecretOut(
        carrier_id=carrier_id, webhook_secret=secret, previous_secret_valid_until=until
    )


@router.get("/locations/{location_id}/capacity", responses={404: {"model": ErrorOut}})
async def location_capacity(location_id: LocationIdPath, who: AnyCaller, svc: Svc) -> CapacityOut:
    """Which parcel sizes the location can take right now (a pre-check: nothing is held, so a
    reservation made after it can still find the location full)."""
    async with svc.pool.connection() as conn:
        row = await locations.get_location(conn, location_id)  # 404 for an unknown location
        counts = await store_doors.free_counts(conn, location_id)
    free = dict.fromkeys(Size, 0)
    reachable = dict.fromkeys(Size, 0)
    for size, accessible, n in counts:
        free[size] += n
        if accessible:
            reachable[size] += n
    return CapacityOut(
        location_id=location_id,
        active=row["active"],
        free_doors=free,
        free_accessible_doors=reachable,
        can_take={
            s: row["active"] and any(free[d] for d in Size if d.rank >= s.rank) for s in Size
        },
        can_take_accessible={
            s: row["active"] and any(reachable[d] for d in Size if d.rank >= s.rank) for s in Size
        },
    )


@router.get("/locations/{location_id}", responses={404: {"model": ErrorOut}})
async def read_location(location_id: LocationIdPath, who: AnyCaller, svc: Svc) -> LocationOut:
    async with svc.pool.connection() as conn:
        row = await location_view(conn, svc, location_id, admin=who.is_admin)
    return LocationOut.model_validate(row)
