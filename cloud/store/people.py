"""Staff members and couriers of a location: added, revoked, listed; each change logged.

A PIN or courier code is hashed here, the moment it is given (`shared.people.secret_hash`, with
the location's salt), and only the hash is stored. Adding or revoking notes the person's new
state on the transaction's `Unit`, so it reaches the location's kiosk through the change log
(kinds ``staff`` and ``courier``, ``docs/protocol.md``); a snapshot lists everyone not revoked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import errors as pg_errors

from cloud.errors import AlreadyExists, CarrierNotFound, Conflict, LocationNotFound, NotFound
from cloud.store.database import Conn
from shared.people import CourierPermission, new_salt, secret_hash
from shared.protocol import CourierState, StaffState

if TYPE_CHECKING:
    from cloud.store.transaction import Unit


class PersonNotFound(NotFound):
    code = "person_not_found"


class SecretInUse(Conflict):
    code = "secret_in_use"


@dataclass(frozen=True, slots=True)
class StaffMember:
    staff_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Courier:
    courier_id: str
    carrier_id: str
    name: str
    permissions: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


async def location_salt(work: Unit, location_id: str) -> str:
    """The location's salt for PINs and courier codes, drawn on first use (row locked).

    Raises:
        LocationNotFound: no such location.
    """
    cur = await work.conn.execute(
        "UPDATE locations SET people_salt = coalesce(people_salt, %s) WHERE location_id = %s"
        " RETURNING people_salt",
        (new_salt(), location_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise LocationNotFound(f"no location {location_id!r}")
    return str(row["people_salt"])


async def add_staff(
    work: Unit, *, location_id: str, staff_id: str, name: str, pin: str
) -> StaffMember:
    """Adds a staff member with their PIN (hashed here, never stored).

    Raises:
        LocationNotFound; AlreadyExists (the id is taken there, even revoked); SecretInUse
            (another live staff member there has that PIN).
    """
    salt = await location_salt(work, location_id)
    pin_hash = secret_hash(pin, salt)
    try:
        async with work.conn.transaction():
            await work.conn.execute(
                "INSERT INTO staff_members (location_id, staff_id, name, pin_hash, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (location_id, staff_id, name, pin_hash, work.now),
            )
    except pg_errors.UniqueViolation as exc:
        if "staff_members_live_pin" in str(exc):
            raise SecretInUse("another staff member at this location has that PIN") from None
        raise AlreadyExists(f"staff {staff_id!r} exists at {location_id}") from None
    state = StaffState(staff_id=staff_id, name=name, pin_hash=pin_hash, salt=salt)
    work.person(location_id, {"kind": "staff", **state.model_dump(mode="json")})
    return StaffMember(staff_id, name, work.now, None)


async def revoke_staff(work: Unit, *, location_id: str, staff_id: str) -> None:
    """Revokes a staff member: their PIN stops working at the kiosk once the change arrives.

    Raises:
        PersonNotFound: no live staff member with that id there.
    """
    cur = await work.conn.execute(
        "UPDATE staff_members s SET revoked_at = %s FROM locations l"
        " WHERE s.location_id = %s AND s.staff_id = %s AND s.revoked_at IS NULL"
        " AND l.location_id = s.location_id RETURNING s.name, s.pin_hash, l.people_salt",
        (work.now, location_id, staff_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise PersonNotFound(f"no live staff member {staff_id!r} at {location_id}")
    state = StaffState(
        staff_id=staff_id,
        name=row["name"],
        pin_hash=row["pin_hash"],
        salt=row["people_salt"],
        revoked=True,
    )
    work.person(location_id, {"kind": "staff", **state.model_dump(mode="json")})


async def add_courier(
    work: Unit,
    *,
    location_id: str,
    courier_id: str,
    carrier_id: str,
    name: str,
    code: str,
    permissions: Sequence[CourierPermission],
) -> Courier:
    """Adds a carrier's driver with their courier code (hashed here) and permissions.

    Raises:
        LocationNotFound; CarrierNotFound; AlreadyExists; SecretInUse.
    """
    salt = await location_salt(work, location_id)
    code_hash = secret_hash(code, salt)
    allowed = sorted({p.value for p in permissions})
    try:
        async with work.conn.transaction():
            await work.conn.execute(
                "INSERT INTO couriers (location_id, courier_id, carrier_id, name, code_hash,"
                " permissions, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (location_id, courier_id, carrier_id, name, code_hash, allowed, work.now),
            )
    except pg_errors.ForeignKeyViolation:
        raise CarrierNotFound(f"no carrier {carrier_id!r}") from None
    except pg_errors.UniqueViolation as exc:
        if "couriers_live_code" in str(exc):
            raise SecretInUse("another courier at this location has that code") from None
        raise AlreadyExists(f"courier {courier_id!r} exists at {location_id}") from None
    state = CourierState(
        courier_id=courier_id,
        name=name,
        carrier_id=carrier_id,
        code_hash=code_hash,
        salt=salt,
        permissions=allowed,  # type: ignore[arg-type]
    )
    work.person(location_id, {"kind": "courier", **state.model_dump(mode="json")})
    return Courier(courier_id, carrier_id, name, tuple(allowed), work.now, None)


async def revoke_courier(work: Unit, *, location_id: str, courier_id: str) -> None:
    """Revokes a courier: their code stops working at the kiosk once the change arrives.

    Raises:
        PersonNotFound: no live courier with that id there.
    """
    cur = await work.conn.execute(
        "UPDATE couriers c SET revoked_at = %s FROM locations l"
        " WHERE c.location_id = %s AND c.courier_id = %s AND c.revoked_at IS NULL"
        " AND l.location_id = c.location_id"
        " RETURNING c.name, c.carrier_id, c.code_hash, c.permissions, l.people_salt",
        (work.now, location_id, courier_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise PersonNotFound(f"no live courier {courier_id!r} at {location_id}")
    state = CourierState(
        courier_id=courier_id,
        name=row["name"],
        carrier_id=row["carrier_id"],
        code_hash=row["code_hash"],
        salt=row["people_salt"],
        permissions=row["permissions"],
        revoked=True,
    )
    work.person(location_id, {"kind": "courier", **state.model_dump(mode="json")})


async def list_staff(conn: Conn, location_id: str) -> list[StaffMember]:
    """Every staff member of the location, revoked ones included, by id."""
    cur = await conn.execute(
        "SELECT staff_id, name, created_at, revoked_at FROM staff_members"
        " WHERE location_id = %s ORDER BY staff_id",
        (location_id,),
    )
    return [StaffMember(**row) for row in await cur.fetchall()]


async def list_couriers(conn: Conn, location_id: str) -> list[Courier]:
    """Every courier of the location, revoked ones included, by id."""
    cur = await conn.execute(
        "SELECT courier_id, carrier_id, name, permissions, created_at, revoked_at FROM couriers"
        " WHERE location_id = %s ORDER BY courier_id",
        (location_id,),
    )
    rows: list[dict[str, Any]] = list(await cur.fetchall())
    return [Courier(**{**row, "permissions": tuple(row["permissions"])}) for row in rows]


async def live_staff_states(conn: Conn, location_id: str) -> list[StaffState]:
    """The location's staff not revoked, as a snapshot lists them."""
    cur = await conn.execute(
        "SELECT s.staff_id, s.name, s.pin_hash, l.people_salt AS salt FROM staff_members s"
        " JOIN locations l USING (location_id)"
        " WHERE s.location_id = %s AND s.revoked_at IS NULL ORDER BY s.staff_id",
        (location_id,),
    )
    return [StaffState(**row) for row in await cur.fetchall()]


async def live_courier_states(conn: Conn, location_id: str) -> list[CourierState]:
    """The location's couriers not revoked, as a snapshot lists them."""
    cur = await conn.execute(
        "SELECT c.courier_id, c.name, c.carrier_id, c.code_hash, l.people_salt AS salt,"
        " c.permissions FROM couriers c JOIN locations l USING (location_id)"
        " WHERE c.location_id = %s AND c.revoked_at IS NULL ORDER BY c.courier_id",
        (location_id,),
    )
    return [CourierState(**row) for row in await cur.fetchall()]
