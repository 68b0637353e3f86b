"""docs/hardware.md must describe every ``locker-sim`` subcommand, option and console command.

Each subcommand has its own heading (``#### `locker-sim bank` ``) in the simulator section, and
its options must be documented under it; the bank's console commands too. A subcommand that the
docs name but the program lacks (a command renamed or removed) fails as well.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hardware_sim.bank_commands import COMMANDS
from hardware_sim.console import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hardware.md"


def _simulator_section() -> str:
    text = DOCS.read_text(encoding="utf-8")
    [section] = re.findall(r"^## Simulator.*?(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    return str(section)


def _subcommand_sections() -> dict[str, str]:
    """Subcommand name to the text under its ``#### `locker-sim NAME` `` heading."""
    parts = re.split(r"^#### `locker-sim ([\w-]+)`\s*$", _simulator_section(), flags=re.MULTILINE)
    # [text before the first heading, name, its text, name, its text, ...]; a subsection ends
    # at the next heading of any level.
    return {
        name: re.split(r"^#{1,4} ", body, maxsplit=1, flags=re.MULTILINE)[0]
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [subcommands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subcommands.choices)


def test_every_subcommand_has_its_own_section_and_no_section_is_stale() -> None:
    assert sorted(_subcommand_sections()) == sorted(_subparsers())


def _undocumented_options(
    subparsers: dict[str, argparse.ArgumentParser], sections: dict[str, str]
) -> list[str]:
    return [
        f"locker-sim {name} {flag}"
        for name, subparser in subparsers.items()
        for action in subparser._actions
        for flag in action.option_strings
        if flag not in ("-h", "--help") and f"`{flag}" not in sections.get(name, "")
    ]


def test_every_option_is_documented_under_its_subcommand() -> None:
    assert _undocumented_options(_subparsers(), _subcommand_sections()) == []


def test_an_option_documented_only_under_another_subcommand_is_reported() -> None:
    subparsers = _subparsers()
    subparsers["scanner"].add_argument("--port-link")  # documented, but under bank
    subparsers["bank"].add_argument("--not-documented-anywhere")

    assert _undocumented_options(subparsers, _subcommand_sections()) == [
        "locker-sim bank --not-documented-anywhere",
        "locker-sim scanner --port-link",
    ]


def test_every_console_command_is_documented_under_bank() -> None:
    bank = _subcommand_sections().get("bank", "")
    names = [name for command in COMMANDS for name in (command.name, *command.aliases)]
    assert [name for name in names if f"`{name}" not in bank] == []
