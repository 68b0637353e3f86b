"""What the HTTP layer needs from the running service, built once by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from cloud.config import CloudSettings
from cloud.store.database import Pool
from shared.clock import Clock

if TYPE_CHECKING:
    from cloud.api.auth import KeyCache
    from cloud.parcels.batcher import AllocationBatcher


@dataclass
class Services:
    settings: CloudSettings
    pool: Pool
    clock: Clock
    key_cache: KeyCache
    allocator: AllocationBatcher
    database_url: str = field(repr=False, default="")


# async: FastAPI runs a plain ``def`` dependency in a worker thread on every request.
async def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]
