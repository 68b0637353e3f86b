"""What a carrier asks for: a door for a parcel, or a door for a customer's return."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from shared.sizes import Dimensions, Size


@dataclass(frozen=True, slots=True)
class AllocationRequest:
    """A carrier's request for a door. ``size`` is already resolved from dimensions."""

    location_id: str
    package_id: str
    order_id: str
    customer_id: str
    size: Size
    dimensions: Dimensions | None = None
    # issue 10: only a door flagged accessible (within reach) will do.
    accessible: bool = False

    def fingerprint(self) -> str:
        """What must match for a repeated request to count as a retry of this one."""
        fields: list[object] = [self.location_id, self.order_id, self.customer_id, self.size.value]
        if self.accessible:  # absent otherwise, so earlier fingerprints stay as they were
            fields.append("accessible")
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    """A carrier's request for a door for a customer's return of an order."""

    location_id: str
    order_id: str
    customer_id: str
    size: Size
    reason: str | None = None

    def fingerprint(self) -> str:
        fields = [self.location_id, self.customer_id, self.size.value]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]
