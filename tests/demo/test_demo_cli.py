"""``locker-demo``: installed as a command, run by ``scripts/demo``, every option documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from demo import cli


def test_every_demo_option_is_documented(repo_root: Path) -> None:
    doc = (repo_root / "docs/cli.md").read_text(encoding="utf-8")
    assert "`locker-demo" in doc
    for action in cli._parser()._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert flag in doc, flag


def test_scripts_demo_runs_the_locker_demo_command(repo_root: Path) -> None:
    script = (repo_root / "scripts/demo").read_text(encoding="utf-8")
    assert "locker-demo" in script


def test_the_locker_demo_command_is_installed() -> None:
    command = Path(sys.executable).parent / "locker-demo"
    done = subprocess.run([command, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--headless" in done.stdout
