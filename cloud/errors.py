"""Errors the service reports to its callers, each with a stable machine-readable code.

Domain code raises these; the HTTP layer turns them into
``{"error": {"code": ..., "message": ..., "details": ...}}`` with the given status.
Codes are part of the API contract (docs/api.md lists them): never rename one.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


class InvalidSize(ServiceError):
    status = 422
    code = "invalid_size"


class PackageTooLarge(ServiceError):
    status = 422
    code = "package_too_large"


class InvalidId(ServiceError):
    """A new location or kiosk id that cannot name an MQTT topic (`shared.topic_ids`)."""

    status = 422
    code = "invalid_id"


class InvalidCode(ServiceError):
    status = 422
    code = "invalid_code"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class LocationNotFound(NotFound):
    code = "location_not_found"


class LocationInactive(ServiceError):
    status = 409
    code = "location_inactive"


class AllocationNotFound(NotFound):
    code = "allocation_not_found"


class DoorNotFound(NotFound):
    code = "door_not_found"


class CarrierNotFound(NotFound):
    code = "carrier_not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class LocationFull(Conflict):
    code = "location_full"


class NoAccessibleDoor(Conflict):
    """The allocation asked for a door within reach and none of those is free."""

    code = "no_accessible_door"


class WrongState(Conflict):
    """The allocation or door is not in a state that allows the request."""

    code = "wrong_state"


class IdempotencyConflict(Conflict):
    """A package id was reused with different allocation details."""

    code = "idempotency_conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class ScanMismatch(ServiceError):
    status = 422
    code = "scan_mismatch"


class CodeNotFound(ServiceError):
    status = 404
    code = "code_not_found"


class CodeExpired(ServiceError):
    status = 410
    code = "code_expired"


class CodeAlreadyUsed(ServiceError):
    status = 409
    code = "code_already_used"


class NothingToPickUp(ServiceError):
    """The code is valid but none of its parcels has been deposited yet."""

    status = 409
    code = "not_yet_deposited"


class KioskNotFound(NotFound):
    code = "kiosk_not_found"


class TooManyAttempts(ServiceError):
    """Too many failed pickup attempts for a carrier or a location: wait ``retry_after`` s."""

    status = 429
    code = "too_many_attempts"

    def __init__(
        self, message: str, *, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class LimitReached(Conflict):
    """A change allowed a limited number of times (a re-issued code, an extension) ran out."""

    code = "limit_reached"
