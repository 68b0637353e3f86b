"""The kiosk's configuration: one TOML file, validated at boot into frozen dataclasses.

A typo found in the field at 3 a.m. should stop the kiosk at boot with a message that names the
key, not misbehave at the first customer. So parsing is strict: unknown keys, wrong types and
out-of-range values raise `KioskConfigError` naming the dotted key (``rules.keypad_window_s``).
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
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    reconnect_max_s: float = 60.0
    ack_timeout_s: float = 5.0
    outbox_check_s: float = 1.0
    event_retention_s: float = 86_400.0

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
)

_TOP_LEVEL = ("kiosk", "layout", "doors", "scanner", "rules", "monitor", "sync")
_SYNC_DURATIONS = {
    "heartbeat_interval_s",
    "reconnect_min_s",
    "reconnect_max_s",
    "ack_timeout_s",
    "outbox_check_s",
    "event_retention_s",
}
_SYNC_KEYS = (
    "broker_url",
    "cloud_public_key",
    "private_key_file",
    "ca_file",
    "keepalive_s",
    *sorted(_SYNC_DURATIONS),
)
_MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_SECRET_KEYS = ("code_secret", "code_secret_file", "code_secret_env")
_RULE_DURATIONS = {
    "keypad_window_s": "keypad_window",
    "keypad_lockout_s": "keypad_lockout",
    "pickup_window_s": "pickup_window",
    "left_open_after_s": "left_open_after",
    "abandon_after_s": "abandon_after",
}


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
    _only(data, "", _TOP_LEVEL)
    kiosk = _table(data, "kiosk", required=True)
    _only(
        kiosk, "kiosk", ("location_id", "kiosk_id", "database", *_SECRET_KEYS, "scanner_driver_id")
    )
    base = source.absolute().parent
    database = Path(_text(kiosk, "kiosk.database"))
    secret = _secret(kiosk, base, read_secret, os.environ if environ is None else environ)
    try:
        doors = parse_door_bank_config(_table(data, "doors", required=True))
        scanner = (
            parse_scanner_config(_table(data, "scanner", required=True))
            if "scanner" in data
            else None
        )
    except HardwareConfigError as error:
        raise KioskConfigError(str(error)) from None
    return KioskConfig(
        source=source,
        location_id=_text(kiosk, "kiosk.location_id"),
        kiosk_id=_text(kiosk, "kiosk.kiosk_id"),
        database=database if database.is_absolute() else base / database,
        code_secret=secret,
        layout=_layout(_table(data, "layout", required=True), doors),
        doors=doors,
        scanner=scanner,
        scanner_driver_id=_text(kiosk, "kiosk.scanner_driver_id", DEFAULT_SCANNER_DRIVER_ID),
        rules=_rules(_table(data, "rules", required=False)),
        monitor=_monitor(_table(data, "monitor", required=False)),
        sync=(
            _sync(_table(data, "sync", required=True), base, read_secret)
            if "sync" in data
            else None
        ),
    )


def bank_doors(config: DoorBankConfig) -> tuple[int, ...]:
    """The door numbers the configured bank drives, ascending (no hardware is touched)."""
    return config.doors


def _secret(
    kiosk: Mapping[str, Any], base: Path, read: bool, environ: Mapping[str, str]
) -> bytes | None:
    given = [key for key in _SECRET_KEYS if key in kiosk]
    if len(given) != 1:
        options = ", ".join(f"kiosk.{key}" for key in _SECRET_KEYS)
        problem = "none" if not given else ", ".join(f"kiosk.{key}" for key in given)
        raise KioskConfigError(f"give exactly one of {options} (got {problem})")
    key = given[0]
    where = f"kiosk.{key}"
    value = _text(kiosk, where)
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


def _layout(table: Mapping[str, Any], doors: DoorBankConfig) -> dict[int, Size]:
    layout: dict[int, Size] = {}
    for key, value in table.items():
        where = f"layout.{key}"
        numbers = _door_range(key, where)
        if not isinstance(value, str):
            raise KioskConfigError(f"{where}: expected a size name, got {value!r}")
        try:
            size = Size.parse(value)
        except SizeError as error:
            raise KioskConfigError(f"{where}: {error}") from None
        for number in numbers:
            if number in layout:
                raise KioskConfigError(f"{where}: door {number} is given a size twice")
            layout[number] = size
    if not layout:
        raise KioskConfigError('layout: no doors; give each door\'s size, e.g. "1-8" = "small"')
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
    return dict(sorted(layout.items()))


def _door_range(key: str, where: str) -> range:
    first, dash, last = key.partition("-")
    try:
        start = int(first)
        end = int(last) if dash else start
    except ValueError:
        raise KioskConfigError(
            f'{where}: keys are door numbers or ranges ("3", "1-8"), got {key!r}'
        ) from None
    if start < 1 or end < start:
        raise KioskConfigError(f"{where}: not a range of door numbers from 1 up")
    return range(start, end + 1)


def _spans(numbers: list[int]) -> str:
    spans: list[str] = []
    for number in numbers:
        if spans and number == int(spans[-1].split("-")[-1]) + 1:
            spans[-1] = f"{spans[-1].split('-')[0]}-{number}"
        else:
            spans.append(str(number))
    return ", ".join(spans)


def _rules(table: Mapping[str, Any]) -> FlowRules:
    _only(table, "rules", ("keypad_max_failures", *_RULE_DURATIONS))
    options: dict[str, Any] = {}
    if "keypad_max_failures" in table:
        value = table["keypad_max_failures"]
        if not _is_int(value) or value < 1:
            raise KioskConfigError(
                f"rules.keypad_max_failures: expected a whole number of at least 1, got {value!r}"
            )
        options["keypad_max_failures"] = value
    for key, name in _RULE_DURATIONS.items():
        if key in table:
            options[name] = timedelta(seconds=_positive(table, f"rules.{key}", key))
    return FlowRules(**options)


def _monitor(table: Mapping[str, Any]) -> MonitorConfig:
    _only(table, "monitor", ("poll_interval_s", "max_backoff_s"))
    options: dict[str, float] = {}
    if "poll_interval_s" in table:
        interval = _positive(table, "monitor.poll_interval_s", "poll_interval_s")
        if interval > MAX_POLL_INTERVAL_S:
            raise KioskConfigError(
                f"monitor.poll_interval_s: at most {MAX_POLL_INTERVAL_S} (doors are polled"
                f" every 500 ms or faster), got {interval}"
            )
        options["poll_interval_s"] = interval
    if "max_backoff_s" in table:
        options["max_backoff_s"] = _positive(table, "monitor.max_backoff_s", "max_backoff_s")
    return MonitorConfig(**options)


def _sync(table: Mapping[str, Any], base: Path, read: bool) -> SyncConfig:
    _only(table, "sync", _SYNC_KEYS)
    url = _text(table, "sync.broker_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise KioskConfigError(f"sync.broker_url: {error}") from None
    if parts.scheme not in _MQTT_PORTS or not parts.hostname:
        raise KioskConfigError(
            f"sync.broker_url: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {url!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise KioskConfigError(
            f"sync.broker_url: only a scheme, host and port are understood, got {url!r}"
        )
    try:
        cloud_key = Verifier.from_base64(_text(table, "sync.cloud_public_key"))
    except SigningError as error:
        raise KioskConfigError(f"sync.cloud_public_key: {error}") from None
    key_file = _path(table, "sync.private_key_file", base)
    signer = None
    if read:
        try:
            signer = Signer.from_file(key_file)
        except SigningError as error:
            raise KioskConfigError(f"sync.private_key_file: {error}") from None
    tls = parts.scheme == "mqtts"
    ca_file = _path(table, "sync.ca_file", base) if "ca_file" in table else None
    if ca_file is not None and not tls:
        raise KioskConfigError("sync.ca_file: only used with an mqtts:// broker_url")
    options: dict[str, Any] = {}
    for key in sorted(_SYNC_DURATIONS):
        if key in table:
            options[key] = _positive(table, f"sync.{key}", key)
    if "keepalive_s" in table:
        keepalive = table["keepalive_s"]
        if not _is_int(keepalive) or not 5 <= keepalive <= 3600:
            raise KioskConfigError(
                f"sync.keepalive_s: expected a whole number of seconds from 5 to 3600,"
                f" got {keepalive!r}"
            )
        options["keepalive_s"] = keepalive
    config = SyncConfig(
        broker_host=parts.hostname,
        broker_port=port or _MQTT_PORTS[parts.scheme],
        cloud_key=cloud_key,
        private_key_file=key_file,
        signer=signer,
        tls=tls,
        ca_file=ca_file,
        **options,
    )
    if config.reconnect_max_s < config.reconnect_min_s:
        raise KioskConfigError(
            f"sync.reconnect_max_s: must be at least sync.reconnect_min_s"
            f" ({config.reconnect_min_s:g}), got {config.reconnect_max_s:g}"
        )
    return config


def _path(table: Mapping[str, Any], where: str, base: Path) -> Path:
    path = Path(_text(table, where))
    return path if path.is_absolute() else base / path


def _only(table: Mapping[str, Any], path: str, keys: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise KioskConfigError(f"{where}: unknown key; known keys here: {', '.join(keys)}")


def _table(data: Mapping[str, Any], key: str, *, required: bool) -> Mapping[str, Any]:
    if key not in data:
        if required:
            raise KioskConfigError(f"[{key}] table is required")
        return {}
    value = data[key]
    if not isinstance(value, Mapping):
        raise KioskConfigError(f"{key}: expected a table, got {type(value).__name__}")
    return value


def _text(table: Mapping[str, Any], where: str, default: str | None = None) -> str:
    key = where.rsplit(".", 1)[-1]
    if key not in table:
        if default is None:
            raise KioskConfigError(f"{where} is required")
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        shown = "an empty string" if isinstance(value, str) else type(value).__name__
        raise KioskConfigError(f"{where}: expected a non-empty string, got {shown}")
    return value


def _positive(table: Mapping[str, Any], where: str, key: str) -> float:
    value = table[key]
    if not (_is_int(value) or isinstance(value, float)) or not value > 0:
        raise KioskConfigError(f"{where}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _is_int(value: object) -> bool:
    # TOML keeps them apart, but Python callers do not: True is not a count.
    return isinstance(value, int) and not isinstance(value, bool)
