"""Seed data for the demo: a carrier, a few locations around Warsaw, some parcels.

The carrier is created with the cloud's own function (the API has no way to choose a carrier's
key); locations and parcels are seeded through the public HTTP API, so the demo shows the API as
a carrier sees it. Drivers deposit the parcels at the kiosk (`demo.system`), not through the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from cloud import errors
from cloud.carriers import create_carrier
from cloud.ops import accounts
from cloud.store import database as db
from cloud.store import people
from cloud.store.transaction import unit
from shared.clock import SystemClock

DEMO_ADMIN_KEY = "demo-admin-key"
DEMO_CARRIER_KEY = "demo-carrier-key"
DEMO_CARRIER = "demo-carrier"
DEMO_LOCATION = "WAW-CENTRUM-01"
DEMO_STAFF_PIN = "1234"
"""The staff PIN of the demo's touchscreen: the demo staff member's own (issue 11)."""
DEMO_STAFF = "demo-staff"
DEMO_OPERATOR = "demo"
DEMO_OPERATOR_PASSWORD = "demo-operator"  # noqa: S105 (the demo's, printed with it)
"""The operations console's admin in the demo (``/ops/``)."""

_LOCATIONS = [
    (DEMO_LOCATION, "Centrum", "ul. Marszałkowska 104, 00-017 Warszawa", 52.2319, 21.0067,
     {"small": 8, "medium": 6, "large": 4, "xlarge": 2}),
    ("WAW-MOKOTOW-02", "Mokotów", "ul. Puławska 145, 02-715 Warszawa", 52.1935, 21.0225,
     {"small": 6, "medium": 4, "large": 2, "xlarge": 1}),
    ("WAW-PRAGA-03", "Praga", "ul. Targowa 72, 03-734 Warszawa", 52.2531, 21.0377,
     {"small": 6, "medium": 4, "large": 2}),
]  # fmt: skip


@dataclass
class DemoParcel:
    package_id: str
    customer_id: str
    allocation_id: str
    locker_number: int
    pickup_code: str
    status: str
    deposit: bool
    """Whether the demo has a driver deposit it (the others stay reserved)."""


PARCELS = [("alice", True), ("alice", True), ("bob", True), ("carol", False)]
"""Customer of each demo parcel, and whether a driver deposits it."""


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {DEMO_ADMIN_KEY}"}


def _carrier() -> dict[str, str]:
    return {"Authorization": f"Bearer {DEMO_CARRIER_KEY}"}


async def create_locations(base_url: str) -> None:
    """Creates the demo locations (the demo carrier exists already)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for location_id, name, address, lat, lng, counts in _LOCATIONS:
            r = await http.post(
                "/api/v1/admin/locations",
                headers=_admin(),
                json={
                    "location_id": location_id,
                    "name": name,
                    "address": address,
                    "latitude": lat,
                    "longitude": lng,
                    "timezone": "Europe/Warsaw",
                    "operating_hours": None,
                    "door_counts": counts,
                },
            )
            r.raise_for_status()


async def reserve_parcels(base_url: str) -> list[DemoParcel]:
    """Reserves a door at the demo location for each of `PARCELS`, as a carrier does."""
    parcels = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for n, (customer, deposit) in enumerate(PARCELS, start=1):
            package_id = f"PKG-{1000 + n}"
            r = await http.post(
                "/api/v1/allocations",
                headers=_carrier(),
                json={
                    "location_id": DEMO_LOCATION,
                    "package_id": package_id,
                    "order_id": f"ORD-{n}",
                    "customer_id": customer,
                    "dimensions": {"length": 10, "width": 7, "height": 4 + n},
                },
            )
            r.raise_for_status()
            body = r.json()
            parcels.append(
                DemoParcel(
                    package_id=package_id,
                    customer_id=customer,
                    allocation_id=body["allocation_id"],
                    locker_number=body["door_number"],  # the kiosk's door number
                    pickup_code=body["pickup_code"],
                    status=body["status"],
                    deposit=deposit,
                )
            )
    return parcels


async def get_allocation(http: httpx.AsyncClient, allocation_id: str) -> dict[str, Any]:
    """The allocation as the carrier's API shows it."""
    r = await http.get(f"/api/v1/allocations/{allocation_id}", headers=_carrier())
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def add_demo_carrier(database_url: str) -> bool:
    """Creates the demo carrier, with its known key; False when the database holds it already."""
    pool = await db.open_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            await create_carrier(
                conn,
                carrier_id=DEMO_CARRIER,
                name="Demo Carrier",
                webhook_url=None,
                now=SystemClock().now(),
                api_key=DEMO_CARRIER_KEY,
            )
    except errors.AlreadyExists:
        return False
    finally:
        await pool.close()
    return True


async def add_demo_operator(database_url: str) -> None:
    """Creates the console's demo admin (an operator with a known password)."""
    pool = await db.open_pool(database_url, min_size=1, max_size=2)
    try:
        await accounts.create_operator(
            pool,
            username=DEMO_OPERATOR,
            password=DEMO_OPERATOR_PASSWORD,
            role=accounts.Role.ADMIN,
            now=SystemClock().now(),
        )
    finally:
        await pool.close()


async def add_demo_staff(database_url: str) -> None:
    """Provisions the demo's staff member at the demo location, with `DEMO_STAFF_PIN`, as
    ``locker-cloud staff add`` does: the kiosk gets them in its first snapshot, and the audit
    names them (issue 11). Called after the locations exist."""
    pool = await db.open_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn, unit(conn, SystemClock().now()) as work:
            await people.add_staff(
                work,
                location_id=DEMO_LOCATION,
                staff_id=DEMO_STAFF,
                name="Demo staff",
                pin=DEMO_STAFF_PIN,
            )
    finally:
        await pool.close()
