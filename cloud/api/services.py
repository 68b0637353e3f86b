"""What the HTTP layer needs from the running service, built once by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from cloud.clock import Clock
from cloud.config import CloudSettings
from cloud.db import Pool

if TYPE_CHECKING:
    from cloud.api.auth import KeyCache


@dataclass
class Services:
    settings: CloudSettings
    pool: Pool
    clock: Clock
    key_cache: KeyCache
    database_url: str = field(repr=False, default="")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]
