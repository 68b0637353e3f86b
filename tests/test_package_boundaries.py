"""Which package may import which: the cloud runs on a server with no kiosk, UI or simulator code
installed, and the kiosk firmware with no cloud code; only the demo brings them together.

Every module of a package is imported in a fresh interpreter (so nothing an earlier test imported
hides an import), walked with pkgutil, and what each import pulled into ``sys.modules`` is
checked against the packages it must never reach.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# pkgutil.walk_packages imports each subpackage to look inside it, before any import here could
# be watched; so the walk is pkgutil.iter_modules over the folders, and nothing is imported
# until each module's turn. The total at the end catches what no single import is blamed for.
_WALK = """
import importlib, importlib.util, json, os, pkgutil, sys

forbidden = set({forbidden!r})

def walk(path, prefix):
    for info in pkgutil.iter_modules([path]):
        yield prefix + info.name
        if info.ispkg:
            yield from walk(os.path.join(path, info.name), prefix + info.name + ".")

spec = importlib.util.find_spec({package!r})
[folder] = spec.submodule_search_locations
names = [{package!r}] + list(walk(folder, {package!r} + "."))
pulled = {{}}
for name in names:
    before = set(sys.modules)
    importlib.import_module(name)
    reached = sorted({{m.split(".")[0] for m in set(sys.modules) - before}} & forbidden)
    if reached:
        pulled[name] = reached
total = sorted({{m.split(".")[0] for m in sys.modules}} & forbidden)
print(json.dumps({{"modules": names, "pulled": pulled, "total": total}}))
"""


def _imports_of_every_module(
    package: str, forbidden: set[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """The modules of ``package``, and those whose import pulled in packages of ``forbidden``
    (with which: the first module to import a package is the one named)."""
    done = subprocess.run(
        [sys.executable, "-c", _WALK.format(package=package, forbidden=sorted(forbidden))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["total"] == [] or result["pulled"], result
    return result["modules"], result["pulled"]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("cloud", {"kiosk", "hardware_sim", "demo", "textual", "gpiozero"}),
        ("kiosk", {"cloud", "demo", "fastapi", "psycopg"}),
        ("shared", {"cloud", "kiosk", "hardware_sim", "demo", "fastapi", "psycopg", "textual"}),
    ],
)
def test_no_module_of_a_package_imports_what_its_side_must_not_have(
    package: str, forbidden: set[str]
) -> None:
    modules, pulled = _imports_of_every_module(package, forbidden)
    assert len(modules) > 1  # the walk found the package's modules, not only its __init__
    assert pulled == {}
