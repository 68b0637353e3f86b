"""Configuration of the cloud service, read from LOCKER_* environment variables.

Every key is documented in docs/configuration.md (a test checks that).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.parcels.guessing import GuessLimits
from cloud.parcels.pickup_changes import PickupChangeLimits
from shared.broker_url import ClientTls
from shared.protocol import SHARED_GROUP


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKER_", extra="ignore")

    # PostgreSQL URL. Empty: start an embedded PostgreSQL under `data_dir`.
    database_url: str | None = None
    data_dir: str = "var/cloud"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=20, ge=1)
    # How long a request waits for a database connection before a 503 (a failover, an outage).
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
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

    # MQTT sync with the kiosks (docs/protocol.md). The broker, as mqtt://host:port (mqtts://
    # for TLS). Empty: this process runs no sync worker.
    # mqtt(s)://USER:PASSWORD@host:port for a broker that takes passwords (%-encode them).
    # Issue 13: a broker cluster's nodes as a comma-separated list (one identity on each).
    mqtt_url: str | None = Field(
        default=None,
        pattern=r"^mqtts?://([^/@,]+@)?[^/:@,]+(:\d+)?/?(,\s*mqtts?://([^/@,]+@)?[^/:@,]+(:\d+)?/?)*$",
    )
    # Subscribe through the shared subscription ($share/locker-cloud/...) so that several
    # workers split the kiosks' messages. Off for a broker without shared subscriptions (amqtt).
    mqtt_shared_subscription: bool = True
    # The shared subscription's group ($share/GROUP/...): workers of one group split the
    # kiosks' messages; a second cloud on the same broker (staging, a test run) takes its own
    # group and so gets its own copy instead of half of this one's. A broker ACL made by
    # `locker-cloud mosquitto-config` grants only the default group.
    mqtt_share_group: str = Field(default=SHARED_GROUP, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # The cloud's Ed25519 signing key (PEM). Empty: <data_dir>/cloud-signing-key.pem, generated
    # on first start when missing (demo, embedded mode). A file named here must exist.
    cloud_key_file: str | None = None
    # Change-log entries older than this are deleted; a kiosk asking for them gets a snapshot.
    change_retention_days: float = Field(default=7.0, gt=0)
    # issue 9: rotate each kiosk's code secret this many days after its last rotation (the
    # lifecycle job). Off by default, so a first deployment does not rotate a whole fleet at
    # once; `locker-cloud rotate-code-secret` rotates on demand either way.
    code_secret_rotation_days: float | None = Field(default=None, gt=0)
    # Run the sync worker in this process when mqtt_url is set.
    run_sync_worker: bool = True
    # A kiosk whose last heartbeat is older than this is shown as stale: two heartbeats of 30 s
    # missed, with 5 s for the network.
    kiosk_stale_after_seconds: float = Field(default=65.0, gt=0)
    # ... and offline only once silent (or dead, its will received) this long: a confirmed
    # outage, not a brief drop (cloud.sync.presence.PresenceRule).
    kiosk_offline_after_seconds: float = Field(default=300.0, gt=0)
    # Bearer token Prometheus must send to read /metrics; unset: /metrics is open.
    metrics_token: str | None = None
    # How often the console's pages fetch their live parts (cloud.ops.pages).
    ops_refresh_seconds: float = Field(default=5.0, gt=0)
    # How often the fleet's health alerts (kiosk offline, keypad lockouts ending) are swept.
    fleet_health_interval_seconds: float = Field(default=15.0, gt=0)
    # TLS to the broker (mqtts:// only): the CA its certificate must chain to (the system's
    # when empty), and this worker's client certificate and key for a broker that requires one
    # (deploy/mosquitto/, issued by `locker-cloud ca issue-worker`).
    mqtt_ca_file: str | None = None
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None
    # The fleet CA's folder (`locker-cloud ca-init`): provision-kiosk then also issues the
    # kiosk's broker certificate, and the ca-* commands find it here without --ca.
    fleet_ca_dir: str | None = None
    # Messages per second a worker takes from one kiosk topic (before parsing) and from one
    # kiosk (once verified), with this burst; beyond, dropped with one log line per 10 s.
    mqtt_rate_limit_per_s: float = Field(default=100.0, gt=0)
    mqtt_rate_limit_burst: int = Field(default=1000, ge=1)
    # Kiosk signing keys rotated over the air (cloud.sync.key_rotation): a kiosk whose key is
    # older than this many days is asked to make its next one (0: never by age, the default, so
    # an upgrade does not rotate a fleet unasked); the previous key is accepted this many hours
    # after the new one is announced (messages in flight, a kiosk offline meanwhile).
    kiosk_key_max_age_days: float = Field(default=0.0, ge=0)
    kiosk_key_grace_hours: float = Field(default=72.0, ge=0)

    # POST /api/v1/pickup: failed attempts allowed per window, per carrier and per location,
    # before 429 too_many_attempts (and an operator alert).
    pickup_failures_per_carrier: int = Field(default=100, ge=1)
    pickup_failures_per_location: int = Field(default=10, ge=1)
    pickup_failure_window_seconds: float = Field(default=600.0, gt=0)

    # Re-issued pickup codes and extended pickup deadlines, per parcel: how many times, and the
    # latest deadline, counted from the end of the first pickup window.
    pickup_code_reissues_max: int = Field(default=3, ge=0)
    pickup_extensions_max: int = Field(default=2, ge=0)
    pickup_extension_max_days: float = Field(default=7.0, ge=0)

    @property
    def pickup_change_limits(self) -> PickupChangeLimits:
        return PickupChangeLimits(
            max_reissues=self.pickup_code_reissues_max,
            max_extensions=self.pickup_extensions_max,
            max_extension=timedelta(days=self.pickup_extension_max_days),
            window=self.pickup_window,
        )

    @property
    def reservation_hold(self) -> timedelta:
        return timedelta(hours=self.reservation_hold_hours)

    @property
    def pickup_window(self) -> timedelta:
        return timedelta(days=self.pickup_window_days)

    @property
    def pickup_guess_limits(self) -> GuessLimits:
        return GuessLimits(
            per_carrier=self.pickup_failures_per_carrier,
            per_location=self.pickup_failures_per_location,
            window=timedelta(seconds=self.pickup_failure_window_seconds),
        )

    @property
    def kiosk_key_max_age(self) -> timedelta | None:
        return timedelta(days=self.kiosk_key_max_age_days) if self.kiosk_key_max_age_days else None

    @property
    def kiosk_key_grace(self) -> timedelta:
        return timedelta(hours=self.kiosk_key_grace_hours)

    @property
    def change_retention(self) -> timedelta:
        return timedelta(days=self.change_retention_days)

    @property
    def code_secret_rotation(self) -> timedelta | None:
        """How often a kiosk's code secret is rotated by schedule; None: not by schedule."""
        days = self.code_secret_rotation_days
        return None if days is None else timedelta(days=days)

    def mqtt_client_tls(self) -> ClientTls:
        """The TLS files of the broker connection.

        Raises:
            ValueError: a certificate without its key, or a key without its certificate.
        """
        return ClientTls(
            ca_file=Path(self.mqtt_ca_file) if self.mqtt_ca_file else None,
            cert_file=Path(self.mqtt_cert_file) if self.mqtt_cert_file else None,
            key_file=Path(self.mqtt_key_file) if self.mqtt_key_file else None,
        )

    def cloud_key_path(self) -> tuple[Path, bool]:
        """The cloud key's PEM file, and whether it may be generated when missing."""
        if self.cloud_key_file:
            return Path(self.cloud_key_file), False
        return Path(self.data_dir) / "cloud-signing-key.pem", True
