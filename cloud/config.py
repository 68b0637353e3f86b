"""Configuration of the cloud service, read from LOCKER_* environment variables.

Every key is documented in docs/configuration.md (a test checks that).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKER_", extra="ignore")

    # PostgreSQL URL. Empty: start an embedded PostgreSQL under `data_dir`.
    database_url: str | None = None
    data_dir: str = "var/cloud"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=20, ge=1)
    # Allocation requests that arrive together are made in one transaction: at most
    # this many per transaction, and this many transactions (pooled connections) at once.
    allocation_batch_max: int = Field(default=64, ge=1)
    allocation_batch_workers: int = Field(default=4, ge=1)

    http_host: str = "127.0.0.1"
    # 0 picks a free port (the chosen one is logged and printed).
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Requests with a larger body are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # The key of the operator's admin API. Empty: admin endpoints refuse every request.
    admin_api_key: str | None = None

    reservation_hold_hours: float = Field(default=24.0, gt=0)
    pickup_window_days: float = Field(default=3.0, gt=0)

    # Lifecycle jobs (reservation timeout, expiry) and notification dispatch.
    lifecycle_interval_seconds: float = Field(default=30.0, gt=0)
    notification_interval_seconds: float = Field(default=2.0, gt=0)
    notification_max_attempts: int = Field(default=8, ge=1)
    # "log" writes notifications to the log; "webhook" POSTs them (see below).
    notification_sender: str = Field(default="log", pattern="^(log|webhook)$")
    # Used when a carrier has no webhook URL of its own.
    notification_webhook_url: str | None = None
    notification_timeout_seconds: float = Field(default=5.0, gt=0)
    run_background_jobs: bool = True

    @property
    def reservation_hold(self) -> timedelta:
        return timedelta(hours=self.reservation_hold_hours)

    @property
    def pickup_window(self) -> timedelta:
        return timedelta(days=self.pickup_window_days)
