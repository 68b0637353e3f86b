"""The kiosk configuration file: valid files load, every bad key is named in the error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kiosk.config import KioskConfigError, load_config
from kiosk.hardware import Backend
from shared.sizes import Size

from .helpers import SECRET, write_config

FAKE = '[doors]\nbackend = "fake"\n[doors.fake]\ndoors = 8\n'


def test_a_full_configuration_loads_into_typed_values(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        doors=FAKE,
        layout='"1-4" = "small"\n"5-6" = "Medium"\n"7" = "large"\n8 = "xlarge"',
        scanner_port="/dev/ttyACM0",
        extra="""
[rules]
keypad_max_failures = 3
keypad_window_s = 30
keypad_lockout_s = 90.5
pickup_window_s = 86400
left_open_after_s = 60
abandon_after_s = 300

[monitor]
poll_interval_s = 0.1
max_backoff_s = 5
""",
    )
    config = load_config(path)
    assert config.location_id == "loc-test"
    assert config.kiosk_id == "kiosk-test"
    assert config.database == tmp_path / "kiosk.db"
    assert config.code_secret == SECRET.encode()
    assert config.layout == {
        1: Size.SMALL, 2: Size.SMALL, 3: Size.SMALL, 4: Size.SMALL,
        5: Size.MEDIUM, 6: Size.MEDIUM, 7: Size.LARGE, 8: Size.XLARGE,
    }  # fmt: skip
    assert config.doors.backend is Backend.FAKE
    assert config.scanner is not None
    assert config.scanner.port == "/dev/ttyACM0"
    assert config.scanner_driver_id == "scanner"
    assert config.rules.keypad_max_failures == 3
    assert config.rules.keypad_lockout == timedelta(seconds=90.5)
    assert config.rules.pickup_window == timedelta(days=1)
    assert config.rules.abandon_after == timedelta(minutes=5)
    assert config.monitor.poll_interval_s == 0.1
    assert config.monitor.max_backoff_s == 5.0
    assert SECRET not in repr(config)


def test_defaults_apply_when_optional_tables_are_left_out(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, doors=FAKE))
    assert config.scanner is None
    assert config.monitor.poll_interval_s == 0.25
    assert config.rules.keypad_max_failures == 5


def test_the_secret_can_come_from_a_file_or_an_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("0123456789abcdef-from-file\n")
    text = write_config(tmp_path, doors=FAKE).read_text()
    path = tmp_path / "kiosk.toml"
    path.write_text(text.replace(f'code_secret = "{SECRET}"', 'code_secret_file = "secret"'))
    assert load_config(path).code_secret == b"0123456789abcdef-from-file"

    path.write_text(text.replace(f'code_secret = "{SECRET}"', 'code_secret_env = "KIOSK_SECRET"'))
    config = load_config(path, environ={"KIOSK_SECRET": "0123456789abcdef-env"})
    assert config.code_secret == b"0123456789abcdef-env"
    with pytest.raises(KioskConfigError, match=r"code_secret_env: .*KIOSK_SECRET is not set"):
        load_config(path, environ={})
    # The read-only tools do not need the secret at all.
    assert load_config(path, read_secret=False, environ={}).code_secret is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("location_id", "location_id_typo"), r"kiosk.location_id_typo: unknown key"),
        (('kiosk_id = "kiosk-test"', "kiosk_id = 7"), r"kiosk.kiosk_id: expected a non-empty"),
        (('database = "kiosk.db"', ""), r"kiosk.database is required"),
        ((f'"{SECRET}"', '"short"'), r"kiosk.code_secret: .*at least 16 bytes, got 5"),
        (
            (f'code_secret = "{SECRET}"', ""),
            r"give exactly one of kiosk.code_secret, kiosk.code_secret_file",
        ),
        (
            (f'code_secret = "{SECRET}"', f'code_secret = "{SECRET}"\ncode_secret_env = "X"'),
            r"give exactly one of .*\(got kiosk.code_secret, kiosk.code_secret_env\)",
        ),
        (('"1-8" = "small"', '"1-8" = "huge"'), r"layout.1-8: .*huge"),
        (('"1-8" = "small"', '"1-7" = "small"'), r"layout: no size for door\(s\) 8"),
        (('"1-8" = "small"', '"1-9" = "small"'), r"layout: door 9 is not driven"),
        (('"1-8" = "small"', '"1-8" = "small"\n"3" = "large"'), r"layout.3: door 3 .* twice"),
        (('"1-8" = "small"', '"one" = "small"'), r"layout.one: keys are door numbers"),
        (('backend = "fake"', 'backend = "telepathy"'), r"doors.backend: 'telepathy'"),
        (("[monitor]", "[monitor]\npoll_interval_s = 0.8"), r"monitor.poll_interval_s: at most"),
        (("[monitor]", "[monitor]\nfrequency = 1"), r"monitor.frequency: unknown key"),
        (("[rules]", "[rules]\nkeypad_max_failures = 0"), r"rules.keypad_max_failures"),
        (("[rules]", "[rules]\nabandon_after_s = -1"), r"rules.abandon_after_s: expected a pos"),
        (("[rules]", "[rules]\nleft_open_after_s = true"), r"rules.left_open_after_s"),
        (("[rules]", "[rules]\n[extra]"), r"extra: unknown key"),
    ],
)
def test_a_bad_key_is_named_in_the_error(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write_config(tmp_path, doors=FAKE, extra="[rules]\n[monitor]\n")
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KioskConfigError, match=message):
        load_config(path)


def test_a_missing_or_broken_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(KioskConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("[kiosk\n")
    with pytest.raises(KioskConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_the_secret_file_must_be_readable(tmp_path: Path) -> None:
    text = write_config(tmp_path, doors=FAKE).read_text()
    path = tmp_path / "kiosk.toml"
    path.write_text(text.replace(f'code_secret = "{SECRET}"', 'code_secret_file = "nope"'))
    with pytest.raises(KioskConfigError, match=r"kiosk.code_secret_file: cannot read .*nope"):
        load_config(path)


def test_a_serial_bank_layout_is_checked_against_its_boards(tmp_path: Path) -> None:
    doors = (
        '[doors]\nbackend = "serial"\n[doors.serial]\nport = "/dev/ttyUSB0"\n'
        'protocol = "kerong"\nboards = [{ address = 0, locks = 4 }, { address = 1, locks = 2 }]\n'
    )
    config = load_config(write_config(tmp_path, doors=doors, layout='"1-6" = "medium"'))
    assert sorted(config.layout) == [1, 2, 3, 4, 5, 6]
    with pytest.raises(KioskConfigError, match=r"layout: no size for door\(s\) 5-6"):
        load_config(write_config(tmp_path, doors=doors, layout='"1-4" = "medium"'))


def test_an_unknown_backend_or_protocol_stops_the_kiosk_config_at_load(tmp_path: Path) -> None:
    doors = '[doors]\nbackend = "fakebank"\n'
    with pytest.raises(KioskConfigError, match=r"doors\.backend: 'fakebank' .*'fake', 'gpio'"):
        load_config(write_config(tmp_path, doors=doors))
    doors = (
        '[doors]\nbackend = "serial"\n[doors.serial]\nport = "/dev/ttyUSB0"\n'
        'protocol = "kerog"\nboards = [{ address = 0, locks = 8 }]\n'
    )
    with pytest.raises(KioskConfigError, match=r"doors\.serial\.protocol: 'kerog' .*'kerong'"):
        load_config(write_config(tmp_path, doors=doors))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[monitor]", "[monitor]\npoll_interval_s = []"),
            r"monitor.poll_interval_s: expected a pos",
        ),
        (
            ("[monitor]", '[monitor]\nmax_backoff_s = "10"'),
            r"monitor.max_backoff_s: expected a pos",
        ),
        (
            ("[kiosk]", '[kiosk]\nscanner_driver_id = ""'),
            r"kiosk.scanner_driver_id: .*empty string",
        ),
        (
            ("[rules]", "[rules]\nkeypad_max_failures = 2.5"),
            r"rules.keypad_max_failures: .*got 2.5",
        ),
        (('"1-8" = "small"', '"1-8" = 3'), r"layout.1-8: expected a size name, got 3"),
        (('"1-8" = "small"', '"8-1" = "small"'), r"layout.8-1: not a range of door numbers"),
    ],
)
def test_config_errors_read_clearly_with_the_key_and_the_problem(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write_config(tmp_path, doors=FAKE, extra="[rules]\n[monitor]\n")
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KioskConfigError, match=message):
        load_config(path)


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    text = write_config(tmp_path, doors=FAKE).read_text()
    path = tmp_path / "kiosk.toml"
    path.write_text(text.replace("[layout]", "[unused]"))
    with pytest.raises(KioskConfigError, match=r"unused: unknown key; known keys here: kiosk"):
        load_config(path)
    path.write_text(text.split("[doors]")[0])
    with pytest.raises(KioskConfigError, match=r"\[doors\] table is required"):
        load_config(path)
