"""The kiosk's configuration: one TOML file, validated at boot into frozen dataclasses.

A typo found in the field at 3 a.m. should stop the kiosk at boot with a message that names the
key, not misbehave at the first customer. So parsing is strict: the file is validated by pydantic
models (`ConfigFile` and its tables, on the base of `kiosk.config_model`), and unknown keys, wrong
types and out-of-range values raise `KioskConfigError` naming the dotted key
(``rules.keypad_window_s``). What needs the file system (the code secret, the private key) or the
door bank (the layout's doors) is checked after the models, with the same kind of message.
The ``[doors]`` and ``[scanner]`` tables belong to the hardware layer and are parsed by
`kiosk.hardware.config`, whose errors are re-raised here as `KioskConfigError`.

The code secret (the key of the codes' HMAC, see `kiosk.store.code_hash`) comes from exactly one
of ``kiosk.code_secret`` (in the file), ``kiosk.code_secret_file`` (a file only root can read) or
``kiosk.code_secret_env`` (an environment variable, as systemd's ``EnvironmentFile=`` sets it).
It is read by `load_config` unless ``read_secret=False`` (the field tech's read-only commands do
not need it, and should not need root to run).

Every key is documented in ``docs/kiosk.md``; `DOCUMENTED_KEYS` lists them for the test that
checks it.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PlainValidator, ValidationError, field_validator, model_validator

from kiosk.config_model import (
    AtLeastOne,
    RawTable,
    Seconds,
    TableModel,
    Text,
    first_problem,
    is_int,
    problem,
)
from kiosk.flows.context import FlowRules
from kiosk.hardware.config import (
    DoorBankConfig,
    HardwareConfigError,
    ScannerConfig,
    parse_door_bank_config,
    parse_scanner_config,
)
from kiosk.hardware.door_bank import MAX_POLL_INTERVAL_S
from kiosk.store.code_hash import MIN_SECRET_BYTES
from shared.broker_list import parse_broker_urls
from shared.broker_url import BrokerUrl, BrokerUrlError, ClientTls, parse_broker_url
from shared.signing import Signer, SigningError, Verifier
from shared.sizes import Size, SizeError

DEFAULT_SCANNER_DRIVER_ID = "scanner"


class KioskConfigError(ValueError):
    """The configuration file is missing, not TOML, or has a bad key; the message names it."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """The ``[monitor]`` table.

    Attributes:
        poll_interval_s: Seconds between door polls (at most 0.5).
        max_backoff_s: Longest wait before polling again after the bank stopped answering.
    """

    poll_interval_s: float = 0.25
    max_backoff_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """The ``[sync]`` table: the broker, the keys, and the sync's timings.

    Attributes:
        broker_host: The MQTT broker's host.
        broker_port: Its port (1883 for ``mqtt://``, 8883 for ``mqtts://`` unless given).
        other_brokers: The broker cluster's other nodes (host, port), from ``broker_urls``.
        cloud_key: The cloud's public key, which every cloud message must be signed with.
        private_key_file: The kiosk's Ed25519 private key (PEM).
        signer: That key, loaded; None when loaded with ``read_secret=False``.
        tls: Whether to speak TLS (``mqtts://``).
        ca_file: The CA certificates to trust for TLS (the system's when None).
        heartbeat_interval_s: Seconds between heartbeats.
        keepalive_s: The MQTT keepalive, in seconds.
        reconnect_min_s: The first reconnection backoff (it doubles at each failure).
        reconnect_max_s: The longest reconnection backoff.
        ack_timeout_s: How long published events wait for an ack before being sent again.
        outbox_check_s: How often the outbox is checked for new events (besides wake-ups).
        event_retention_s: How long acknowledged events are kept before pruning.
        username: The MQTT user name (from the broker URL), for a broker that takes passwords.
        password: Its password (from the URL or ``password_file``).
        client_cert_file: The kiosk's broker certificate (PEM, CN = kiosk id), for a broker that
            requires client certificates (``deploy/mosquitto/``).
        client_key_file: That certificate's private key (PEM).
        rate_limit_per_s: Messages per second the kiosk reads from one cloud topic; a flood
            beyond it (and its burst) is dropped unread, with one log line per 10 s.
        rate_limit_burst: The burst allowed above that rate.
        subscription_qos: The QoS of the subscription to the cloud's topics: 1, or 0 on a
            NATS broker cluster, where a QoS 1 subscription costs a JetStream consumer per
            connection and holds the reconnection after a node dies (docs/protocol.md,
            "Broker cluster"). Either way a message lost with its connection is made up for by
            the next connection's ``sync_request``.
        connect_timeout_s: How long each step of a connection attempt (the CONNACK, the
            SUBACK, the birth's PUBACK) may take before the attempt is given up and the next
            broker of the list tried.
    """

    broker_host: str
    broker_port: int
    cloud_key: Verifier
    private_key_file: Path
    signer: Signer | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    heartbeat_interval_s: float = 30.0
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    # 3 s: with full jitter a fleet's reconnections spread over 3 s after an outage, and every
    # kiosk is back within 5 s of the broker (docs/BENCHMARKS.md, convergence).
    reconnect_max_s: float = 3.0
    ack_timeout_s: float = 5.0
    outbox_check_s: float = 1.0
    event_retention_s: float = 86_400.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    rate_limit_per_s: float = 100.0
    rate_limit_burst: int = 1000
    # Issue 13 (broker cluster): the cluster's other nodes, tried in turn after a failure.
    other_brokers: tuple[tuple[str, int], ...] = ()
    subscription_qos: int = 1
    connect_timeout_s: float = 10.0

    @property
    def brokers(self) -> tuple[tuple[str, int], ...]:
        """Every broker node (host, port): ``broker_url``'s, then ``broker_urls``' ones."""
        return ((self.broker_host, self.broker_port), *self.other_brokers)

    def client_tls(self) -> ClientTls | None:
        """The TLS settings of the broker connection; None without TLS."""
        if not self.tls:
            return None
        return ClientTls(self.ca_file, self.client_cert_file, self.client_key_file)

    def require_signer(self) -> Signer:
        """The kiosk's signing key.

        Raises:
            KioskConfigError: the configuration was loaded without reading it.
        """
        if self.signer is None:
            raise KioskConfigError("the kiosk's private key was not read (read_secret=False)")
        return self.signer


@dataclass(frozen=True, slots=True)
class KioskConfig:
    """The whole validated configuration.

    Attributes:
        source: The file it was read from.
        location_id: The location this kiosk serves (as the cloud names it).
        kiosk_id: This kiosk's id.
        database: The SQLite file (relative paths are resolved against the file's folder).
        code_secret: The code secret's bytes; None when loaded with ``read_secret=False``.
        layout: Door number to size, for every door of the bank.
        doors: The parsed ``[doors]`` table.
        scanner: The parsed ``[scanner]`` table; None for a kiosk without a scanner.
        scanner_driver_id: The driver id recorded for drop-offs scanned at the kiosk.
        rules: The flows' rules.
        monitor: The door monitor's settings.
        sync: The ``[sync]`` table; None for a kiosk that does not talk to the cloud.
        time_zone: The location's IANA time zone (the touchscreen's clock shows local time).
    """

    source: Path
    location_id: str
    kiosk_id: str
    database: Path
    code_secret: bytes | None = field(repr=False)
    layout: Mapping[int, Size]
    doors: DoorBankConfig
    scanner: ScannerConfig | None
    scanner_driver_id: str = DEFAULT_SCANNER_DRIVER_ID
    rules: FlowRules = field(default_factory=FlowRules)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    sync: SyncConfig | None = None
    time_zone: str = "UTC"

    def require_secret(self) -> bytes:
        """The code secret.

        Raises:
            KioskConfigError: the configuration was loaded without reading it.
        """
        if self.code_secret is None:
            raise KioskConfigError("the code secret was not read (read_secret=False)")
        return self.code_secret


# The kiosk's own keys; the hardware tables' keys are in kiosk.hardware.config.DOCUMENTED_KEYS.
DOCUMENTED_KEYS: tuple[str, ...] = (
    "kiosk.location_id",
    "kiosk.kiosk_id",
    "kiosk.database",
    "kiosk.code_secret",
    "kiosk.code_secret_file",
    "kiosk.code_secret_env",
    "kiosk.scanner_driver_id",
    "kiosk.time_zone",
    "layout",
    "rules.keypad_max_failures",
    "rules.keypad_window_s",
    "rules.keypad_lockout_s",
    "rules.pickup_window_s",
    "rules.left_open_after_s",
    "rules.abandon_after_s",
    "monitor.poll_interval_s",
    "monitor.max_backoff_s",
    "sync.broker_url",
    "sync.broker_urls",
    "sync.cloud_public_key",
    "sync.private_key_file",
    "sync.ca_file",
    "sync.heartbeat_interval_s",
    "sync.keepalive_s",
    "sync.reconnect_min_s",
    "sync.reconnect_max_s",
    "sync.ack_timeout_s",
    "sync.outbox_check_s",
    "sync.event_retention_s",
    "sync.client_cert_file",
    "sync.client_key_file",
    "sync.password_file",
    "sync.rate_limit_per_s",
    "sync.rate_limit_burst",
    "sync.subscription_qos",
    "sync.connect_timeout_s",
)

_SECRET_KEYS = ("code_secret", "code_secret_file", "code_secret_env")
_RULE_DURATIONS = {
    "keypad_window_s": "keypad_window",
    "keypad_lockout_s": "keypad_lockout",
    "pickup_window_s": "pickup_window",
    "left_open_after_s": "left_open_after",
    "abandon_after_s": "abandon_after",
}
_SYNC_OPTIONS = (
    "heartbeat_interval_s",
    "keepalive_s",
    "reconnect_min_s",
    "reconnect_max_s",
    "ack_timeout_s",
    "outbox_check_s",
    "event_retention_s",
    "rate_limit_per_s",
    "rate_limit_burst",
    "subscription_qos",
    "connect_timeout_s",
)


def _positive_rate(value: object) -> float:
    if not (is_int(value) or isinstance(value, float)) or not value > 0:  # type: ignore[operator]
        raise problem(f"expected a positive number of messages per second, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _broker_url(value: object) -> BrokerUrl:
    try:
        return parse_broker_url(_non_empty(value))
    except BrokerUrlError as error:
        raise problem(str(error)) from None


def _broker_urls(value: object) -> tuple[BrokerUrl, ...]:
    # Issue 13 (broker cluster): a TOML array of URLs or one comma-separated string.
    if not isinstance(value, str | list) or not all(isinstance(v, str) for v in value):
        raise problem(f"expected a list of broker URLs, got {value!r}")
    try:
        return parse_broker_urls(value)
    except BrokerUrlError as error:
        raise problem(str(error)) from None


def _verifier(value: object) -> Verifier:
    try:
        return Verifier.from_base64(_non_empty(value))
    except SigningError as error:
        raise problem(str(error)) from None


def _non_empty(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        shown = "an empty string" if isinstance(value, str) else type(value).__name__
        raise problem(f"expected a non-empty string, got {shown}")
    return value


def _poll_interval(value: object) -> float:
    if not (is_int(value) or isinstance(value, float)) or not value > 0:  # type: ignore[operator]
        raise problem(f"expected a positive number of seconds, got {value!r}")
    if value > MAX_POLL_INTERVAL_S:  # type: ignore[operator]
        raise problem(
            f"at most {MAX_POLL_INTERVAL_S} (doors are polled every 500 ms or faster), got {value}"
        )
    return float(value)  # type: ignore[arg-type]


def _keepalive(value: object) -> int:
    if not is_int(value) or not 5 <= value <= 3600:  # type: ignore[operator]
        raise problem(f"expected a whole number of seconds from 5 to 3600, got {value!r}")
    return value  # type: ignore[return-value]


def _subscription_qos(value: object) -> int:
    if not is_int(value) or value not in (0, 1):
        raise problem(f"expected 0 or 1, got {value!r}")
    return int(value)


def _layout(value: object) -> dict[int, Size]:
    if not isinstance(value, Mapping):
        raise problem(f"expected a table, got {type(value).__name__}")
    layout: dict[int, Size] = {}
    for key, name in value.items():
        numbers = _door_range(key)
        if not isinstance(name, str):
            raise problem(f"expected a size name, got {name!r}", key=key)
        try:
            size = Size.parse(name)
        except SizeError as error:
            raise problem(str(error), key=key) from None
        for number in numbers:
            if number in layout:
                raise problem(f"door {number} is given a size twice", key=key)
            layout[number] = size
    if not layout:
        raise problem('no doors; give each door\'s size, e.g. "1-8" = "small"')
    return dict(sorted(layout.items()))


def _door_range(key: str) -> range:
    first, dash, last = key.partition("-")
    try:
        start = int(first)
        end = int(last) if dash else start
    except ValueError:
        raise problem(
            f'keys are door numbers or ranges ("3", "1-8"), got {key!r}', key=key
        ) from None
    if start < 1 or end < start:
        raise problem("not a range of door numbers from 1 up", key=key)
    return range(start, end + 1)


class KioskTable(TableModel):
    """The ``[kiosk]`` table: who this kiosk is, its database, where its code secret is."""

    location_id: Text
    kiosk_id: Text
    database: Text
    code_secret: Text | None = None
    code_secret_file: Text | None = None
    code_secret_env: Text | None = None
    scanner_driver_id: Text = DEFAULT_SCANNER_DRIVER_ID
    # Issue 11: the location's time zone, for the clock on the touchscreen.
    time_zone: Text = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise problem(f"{value!r} is not an IANA time zone (e.g. Europe/Warsaw)") from None
        return value

    @model_validator(mode="after")
    def _one_secret_source(self) -> KioskTable:
        given = [key for key in _SECRET_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            options = ", ".join(f"kiosk.{key}" for key in _SECRET_KEYS)
            got = "none" if not given else ", ".join(f"kiosk.{key}" for key in given)
            raise problem(f"give exactly one of {options} (got {got})")
        return self

    @property
    def secret_source(self) -> tuple[str, str]:
        """The one secret key given, and its value."""
        key = next(key for key in _SECRET_KEYS if getattr(self, key) is not None)
        return key, getattr(self, key)


class RulesTable(TableModel):
    """The ``[rules]`` table: the flows' limits (see `FlowRules`)."""

    keypad_max_failures: AtLeastOne | None = None
    keypad_window_s: Seconds | None = None
    keypad_lockout_s: Seconds | None = None
    pickup_window_s: Seconds | None = None
    left_open_after_s: Seconds | None = None
    abandon_after_s: Seconds | None = None

    def rules(self) -> FlowRules:
        """The flows' rules; keys left out keep `FlowRules`' defaults."""
        options: dict[str, Any] = {}
        if self.keypad_max_failures is not None:
            options["keypad_max_failures"] = self.keypad_max_failures
        for key, name in _RULE_DURATIONS.items():
            seconds = getattr(self, key)
            if seconds is not None:
                options[name] = timedelta(seconds=seconds)
        return FlowRules(**options)


class MonitorTable(TableModel):
    """The ``[monitor]`` table (see `MonitorConfig`)."""

    poll_interval_s: Annotated[float | None, PlainValidator(_poll_interval)] = None
    max_backoff_s: Seconds | None = None

    def monitor(self) -> MonitorConfig:
        """The monitor's settings; keys left out keep `MonitorConfig`'s defaults."""
        return MonitorConfig(**_given(self, "poll_interval_s", "max_backoff_s"))


class SyncTable(TableModel):
    """The ``[sync]`` table (see `SyncConfig`); files are read by `parse_config`."""

    broker_url: Annotated[BrokerUrl, PlainValidator(_broker_url)]
    cloud_public_key: Annotated[Verifier, PlainValidator(_verifier)]
    private_key_file: Text
    ca_file: Text | None = None
    heartbeat_interval_s: Seconds | None = None
    keepalive_s: Annotated[int | None, PlainValidator(_keepalive)] = None
    reconnect_min_s: Seconds | None = None
    reconnect_max_s: Seconds | None = None
    ack_timeout_s: Seconds | None = None
    outbox_check_s: Seconds | None = None
    event_retention_s: Seconds | None = None
    client_cert_file: Text | None = None
    client_key_file: Text | None = None
    password_file: Text | None = None
    rate_limit_per_s: Annotated[float | None, PlainValidator(_positive_rate)] = None
    rate_limit_burst: AtLeastOne | None = None
    broker_urls: Annotated[tuple[BrokerUrl, ...] | None, PlainValidator(_broker_urls)] = None
    subscription_qos: Annotated[int | None, PlainValidator(_subscription_qos)] = None
    connect_timeout_s: Seconds | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SyncTable:
        for other in self.broker_urls or ():
            same = (other.tls, other.username, other.password)
            if same != (self.broker_url.tls, self.broker_url.username, self.broker_url.password):
                raise problem(
                    "every broker needs broker_url's scheme, user name and password",
                    key="broker_urls",
                )
            if (other.host, other.port) == (self.broker_url.host, self.broker_url.port):
                raise problem("lists broker_url's broker again", key="broker_urls")
        for key in ("ca_file", "client_cert_file", "client_key_file"):
            if getattr(self, key) is not None and not self.broker_url.tls:
                raise problem("only used with an mqtts:// broker_url", key=key)
        if (self.client_cert_file is None) != (self.client_key_file is None):
            missing = "client_key_file" if self.client_key_file is None else "client_cert_file"
            raise problem("a client certificate needs both its files", key=missing)
        if self.password_file is not None and (
            self.broker_url.username is None or self.broker_url.password is not None
        ):
            raise problem(
                "needs a user name in broker_url (mqtts://USER@HOST) and no password there",
                key="password_file",
            )
        low = self.reconnect_min_s or _SYNC_DEFAULTS["reconnect_min_s"]
        high = self.reconnect_max_s or _SYNC_DEFAULTS["reconnect_max_s"]
        if high < low:
            raise problem(
                f"must be at least sync.reconnect_min_s ({low:g}), got {high:g}",
                key="reconnect_max_s",
            )
        return self


_SYNC_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(SyncConfig)}


class ConfigFile(TableModel):
    """The whole file. ``[doors]`` and ``[scanner]`` are checked to be tables here and
    validated by `kiosk.hardware.config`, whose models they are."""

    kiosk: KioskTable
    layout: Annotated[dict[int, Size], PlainValidator(_layout)]
    doors: RawTable
    scanner: RawTable | None = None
    rules: RulesTable = RulesTable()
    monitor: MonitorTable = MonitorTable()
    sync: SyncTable | None = None


def _given(table: TableModel, *names: str) -> dict[str, Any]:
    # Keys left out keep the dataclass's defaults, so defaults live in one place.
    return {name: getattr(table, name) for name in names if getattr(table, name) is not None}


def load_config(
    path: str | Path,
    *,
    read_secret: bool = True,
    environ: Mapping[str, str] | None = None,
) -> KioskConfig:
    """Reads and validates the configuration file at ``path``.

    Args:
        path: The TOML file.
        read_secret: Whether to read and check the code secret (its source is checked anyway).
        environ: Where ``kiosk.code_secret_env`` is looked up; ``os.environ`` if not given.

    Raises:
        KioskConfigError: the file cannot be read or is not TOML, or a key is missing,
            unknown, mistyped or out of range (the message names it).
    """
    source = Path(path)
    try:
        with source.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise KioskConfigError(f"configuration file {source} not found") from None
    except OSError as error:
        raise KioskConfigError(f"cannot read configuration file {source}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise KioskConfigError(f"{source} is not valid TOML: {error}") from None
    return parse_config(
        data,
        source=source,
        read_secret=read_secret,
        environ=os.environ if environ is None else environ,
    )


def parse_config(
    data: Mapping[str, Any],
    *,
    source: Path,
    read_secret: bool = True,
    environ: Mapping[str, str] | None = None,
) -> KioskConfig:
    """Validates an already parsed TOML document (see `load_config`).

    Raises:
        KioskConfigError: a key is missing, unknown, mistyped or out of range.
    """
    try:
        document = ConfigFile.model_validate(data)
    except ValidationError as error:
        raise KioskConfigError(first_problem(error, top_level_tables=True)) from None
    base = source.absolute().parent
    kiosk = document.kiosk
    database = Path(kiosk.database)
    secret = _secret(kiosk, base, read_secret, os.environ if environ is None else environ)
    try:
        doors = parse_door_bank_config(document.doors)
        scanner = parse_scanner_config(document.scanner) if document.scanner is not None else None
    except HardwareConfigError as error:
        raise KioskConfigError(str(error)) from None
    _check_layout(document.layout, doors)
    return KioskConfig(
        source=source,
        location_id=kiosk.location_id,
        kiosk_id=kiosk.kiosk_id,
        database=database if database.is_absolute() else base / database,
        code_secret=secret,
        layout=document.layout,
        doors=doors,
        scanner=scanner,
        scanner_driver_id=kiosk.scanner_driver_id,
        rules=document.rules.rules(),
        monitor=document.monitor.monitor(),
        sync=_sync(document.sync, base, read_secret) if document.sync is not None else None,
        time_zone=kiosk.time_zone,
    )


def bank_doors(config: DoorBankConfig) -> tuple[int, ...]:
    """The door numbers the configured bank drives, ascending (no hardware is touched)."""
    return config.doors


def _secret(kiosk: KioskTable, base: Path, read: bool, environ: Mapping[str, str]) -> bytes | None:
    key, value = kiosk.secret_source
    where = f"kiosk.{key}"
    if not read:
        return None
    if key == "code_secret":
        secret = value.encode()
    elif key == "code_secret_file":
        path = Path(value) if Path(value).is_absolute() else base / value
        try:
            # A trailing newline is an editor's, not part of the secret.
            secret = path.read_bytes().rstrip(b"\r\n")
        except OSError as error:
            raise KioskConfigError(f"{where}: cannot read {path}: {error.strerror}") from None
    else:
        if value not in environ:
            raise KioskConfigError(f"{where}: environment variable {value} is not set")
        secret = environ[value].encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise KioskConfigError(
            f"{where}: the code secret must be at least {MIN_SECRET_BYTES} bytes, got {len(secret)}"
        )
    return secret


def _check_layout(layout: Mapping[int, Size], doors: DoorBankConfig) -> None:
    driven = set(bank_doors(doors))
    extra = sorted(set(layout) - driven)
    if extra:
        raise KioskConfigError(
            f"layout: door {extra[0]} is not driven by the [doors] bank"
            f" (its doors are {_spans(sorted(driven))})"
        )
    missing = sorted(driven - set(layout))
    if missing:
        raise KioskConfigError(f"layout: no size for door(s) {_spans(missing)} of the [doors] bank")


def _spans(numbers: list[int]) -> str:
    spans: list[str] = []
    for number in numbers:
        if spans and number == int(spans[-1].split("-")[-1]) + 1:
            spans[-1] = f"{spans[-1].split('-')[0]}-{number}"
        else:
            spans.append(str(number))
    return ", ".join(spans)


def _sync(table: SyncTable, base: Path, read: bool) -> SyncConfig:
    key_file = _path(table.private_key_file, base)
    signer = None
    if read:
        try:
            signer = Signer.from_file(key_file)
        except SigningError as error:
            raise KioskConfigError(f"sync.private_key_file: {error}") from None
    password = table.broker_url.password
    if read and table.password_file is not None:
        password = _read_password(_path(table.password_file, base))
    sync = SyncConfig(
        broker_host=table.broker_url.host,
        broker_port=table.broker_url.port,
        cloud_key=table.cloud_public_key,
        private_key_file=key_file,
        signer=signer,
        tls=table.broker_url.tls,
        ca_file=_optional_path(table.ca_file, base),
        username=table.broker_url.username,
        password=password,
        client_cert_file=_optional_path(table.client_cert_file, base),
        client_key_file=_optional_path(table.client_key_file, base),
        other_brokers=tuple((url.host, url.port) for url in table.broker_urls or ()),
        **_given(table, *_SYNC_OPTIONS),
    )
    tls = sync.client_tls()
    if read and tls is not None and tls.cert_file is not None:
        # A certificate that does not load (or does not match its key) stops the kiosk at boot,
        # not at its first connection attempt, hours later, with a TLS error in a loop.
        try:
            tls.context()
        except (OSError, ssl.SSLError) as error:
            raise KioskConfigError(f"sync.client_cert_file: {error}") from None
    return sync


def _read_password(path: Path) -> str:
    try:
        password = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise KioskConfigError(f"sync.password_file: cannot read {path}: {error}") from None
    if not password:
        raise KioskConfigError(f"sync.password_file: {path} is empty")
    return password


def _optional_path(value: str | None, base: Path) -> Path | None:
    return None if value is None else _path(value, base)


def _path(value: str, base: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path
