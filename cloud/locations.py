"""Locker locations: creating them, and finding the nearest ones with free doors.

Coordinates are stored twice: as latitude/longitude for people, and as a point on
the unit sphere (a ``cube`` of three coordinates) for the GiST index. Ordering by
straight-line (chord) distance between unit vectors is exactly the order of
great-circle distance, so the index's nearest-neighbour scan needs no correction
at any latitude, and the dateline is not special.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud import errors
from cloud.store import locations as store_locations
from cloud.store.database import Conn
from shared.sizes import Size
from shared.topic_ids import TopicIdError, check_topic_id

EARTH_RADIUS_KM = 6371.0088
NEAREST_LIMIT = 10
# How many nearest locations to inspect per round when most are full; doubled
# until enough with free doors are found or MAX_SCAN is reached.
_FIRST_SCAN = 40
_MAX_SCAN = 2560

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def unit_vector(latitude: float, longitude: float) -> list[float]:
    lat, lng = math.radians(latitude), math.radians(longitude)
    return [math.cos(lat) * math.cos(lng), math.cos(lat) * math.sin(lng), math.sin(lat)]


def chord_to_km(chord: float) -> float:
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2))


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.BadRequest(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Warsaw"
        ) from None
    return name


def validate_operating_hours(hours: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Checks ``{"mon": [["06:00", "22:00"]], ...}``; None means open around the clock."""
    if hours is None:
        return None
    clean: dict[str, list[list[str]]] = {}
    for day, spans in hours.items():
        if day not in _WEEKDAYS:
            raise errors.BadRequest(
                f"operating_hours: {day!r} is not one of {', '.join(_WEEKDAYS)}"
            )
        if not isinstance(spans, list):
            raise errors.BadRequest(f"operating_hours.{day} must be a list of [open, close] pairs")
        clean[day] = []
        for span in spans:
            if not (isinstance(span, list) and len(span) == 2):
                raise errors.BadRequest(f"operating_hours.{day}: each span is [open, close]")
            opens, closes = (_parse_hhmm(day, t) for t in span)
            if opens >= closes:
                raise errors.BadRequest(f"operating_hours.{day}: {span[0]} is not before {span[1]}")
            clean[day].append([str(span[0]), str(span[1])])
    return clean


def _parse_hhmm(day: str, value: object) -> int:
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hh, mm = value[:2], value[3:]
        if hh.isdigit() and mm.isdigit() and int(mm) < 60 and int(hh) * 60 + int(mm) <= 24 * 60:
            return int(hh) * 60 + int(mm)
    raise errors.BadRequest(f"operating_hours.{day}: {value!r} is not a time like 06:30")


async def create_location(
    conn: Conn,
    *,
    location_id: str,
    name: str,
    address: str,
    latitude: float,
    longitude: float,
    timezone: str,
    operating_hours: Mapping[str, Any] | None,
    now: datetime,
) -> None:
    """Inserts a location. Must run inside the caller's transaction.

    Raises:
        AlreadyExists, BadRequest, InvalidId (an id no sync topic can carry).
    """
    try:
        check_topic_id("location id", location_id)
    except TopicIdError as error:
        raise errors.InvalidId(str(error), details={"field": "location_id"}) from None
    validate_timezone(timezone)
    hours = validate_operating_hours(operating_hours)
    created = await store_locations.insert(
        conn,
        location_id=location_id,
        name=name,
        address=address,
        latitude=latitude,
        longitude=longitude,
        unit_vector=unit_vector(latitude, longitude),
        timezone=timezone,
        operating_hours=hours,
        now=now,
    )
    if not created:
        raise errors.AlreadyExists(f"location {location_id!r} already exists")


async def update_location(
    conn: Conn, location_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Changes a location's descriptive fields or its ``active`` flag.

    Raises:
        LocationNotFound, BadRequest.
    """
    unknown = set(changes) - store_locations.UPDATABLE
    if unknown:
        raise errors.BadRequest(f"cannot change {', '.join(sorted(unknown))}")
    values = dict(changes)
    if "timezone" in values:
        validate_timezone(values["timezone"])
    if "operating_hours" in values:
        values["operating_hours"] = validate_operating_hours(values["operating_hours"])
    if values and not await store_locations.update(conn, location_id, values):
        raise errors.LocationNotFound(f"no location {location_id!r}")
    return await get_location(conn, location_id)


async def get_location(conn: Conn, location_id: str) -> dict[str, Any]:
    row = await store_locations.get(conn, location_id)
    if row is None:
        raise errors.LocationNotFound(f"no location {location_id!r}")
    row["free_doors"] = await store_locations.free_door_counts(conn, location_id)
    return row


async def nearest_with_free_doors(
    conn: Conn,
    *,
    latitude: float,
    longitude: float,
    size: Size | None,
    limit: int = NEAREST_LIMIT,
    exclude_location_id: str | None = None,
) -> list[dict[str, Any]]:
    """The nearest active locations with a free door of ``size`` or larger (any, if None).

    Each result carries ``distance_km`` and ``free_doors`` per size.
    """
    params: dict[str, Any] = {
        "point": unit_vector(latitude, longitude),
        "exclude": exclude_location_id,
        "rank": 0 if size is None else size.rank,
        "limit": limit,
    }
    scan = _FIRST_SCAN
    while True:
        rows = await store_locations.nearest(conn, params, scan)
        # Stop once enough were found, or the scan saw every location there is.
        if len(rows) >= limit or scan >= _MAX_SCAN:
            break
        if scan >= await store_locations.count_active(conn):
            break
        scan *= 4
    return [_present(row) for row in rows]


def _present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "location_id": row["location_id"],
        "name": row["name"],
        "address": row["address"],
        "latitude": row["latitude"],
        "longitude": row["longitude"],
        "timezone": row["timezone"],
        "operating_hours": row["operating_hours"],
        "distance_km": round(chord_to_km(row["chord"]), 3),
        "free_doors": {size.value: row[size.value] for size in Size},
    }


async def nearest_alternatives(
    conn: Conn, location_id: str, size: Size, limit: int = 5, within_km: float = 10.0
) -> list[dict[str, Any]]:
    """Locations within ``within_km`` of ``location_id`` with a free door of the size, for a 409
    location_full (nearest first: whatever is farther is dropped, so none nearer is missed)."""
    here = await store_locations.get(conn, location_id)
    if here is None:
        return []
    found = await nearest_with_free_doors(
        conn,
        latitude=here["latitude"],
        longitude=here["longitude"],
        size=size,
        limit=limit,
        exclude_location_id=location_id,
    )
    return [alt for alt in found if alt["distance_km"] <= within_km]


def sizes_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {size.value: 0 for size in Size}
    for row in rows:
        counts[row["size"]] += 1
    return counts
