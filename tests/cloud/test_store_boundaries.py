"""The cloud's shape, checked: SQL lives in cloud/store, and status writes check the tables.

Both walk the source (AST string constants, f-string parts included), so a new module that
breaks the rule fails here, not in review.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

CLOUD = Path(__file__).resolve().parents[2] / "cloud"
STORE = CLOUD / "store"

# What only SQL looks like: keywords in capitals, as every statement here is written.
SQL = re.compile(
    r"\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+(\s+\w+)?\s+SET|DELETE\s+FROM|"
    r"SET\s+(LOCAL|CONSTRAINTS|TRANSACTION)|LISTEN\s|NOTIFY\s|pg_advisory)"
)
# An UPDATE of a table with a state machine, and the SET clause it writes.
STATE_UPDATE = re.compile(
    r"UPDATE\s+(allocations|doors)\b(?:\s+\w+)?\s+SET\b(.*?)(?=\bWHERE\b|\bFROM\b|\bRETURNING\b|$)",
    re.S,
)
STATUS_LITERAL = re.compile(r"\bstatus\s*=\s*'")
# The shared transition table's entry points (shared.states).
GUARDS = {"transition", "sources", "allocation_transition", "door_transition"}


def _modules(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*.py") if "migrations" not in p.parts)


def _strings(node: ast.AST) -> Iterator[tuple[int, str]]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.lineno, child.value


def test_sql_appears_only_in_the_store() -> None:
    found = []
    for path in _modules(CLOUD):
        if STORE in path.parents:
            continue
        for line, text in _strings(ast.parse(path.read_text(), str(path))):
            if SQL.search(text):
                found.append(f"{path.relative_to(CLOUD.parent)}:{line}: {text.strip()[:60]!r}")
    assert found == [], "SQL outside cloud/store:\n" + "\n".join(found)


def _names_called(node: ast.AST) -> set[str]:
    called = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            if isinstance(func, ast.Name):
                called.add(func.id)
            elif isinstance(func, ast.Attribute):
                called.add(func.attr)
    return called


def test_every_status_write_checks_the_transition_table() -> None:
    unchecked = []
    for path in _modules(CLOUD):
        tree = ast.parse(path.read_text(), str(path))
        for line, text in _strings(tree):
            for match in STATE_UPDATE.finditer(text):
                if STATUS_LITERAL.search(match.group(2)):
                    unchecked.append(f"{path.name}:{line}: a status literal written to {match[1]}")
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            writes = any(
                "status" in m.group(2)
                for _, text in _strings(func)
                for m in STATE_UPDATE.finditer(text)
            )
            if writes and not GUARDS & _names_called(func):
                unchecked.append(
                    f"{path.name}:{func.lineno}: {func.name} writes a status unchecked"
                )
    assert unchecked == [], "\n".join(unchecked)


def test_the_checks_catch_what_they_are_for() -> None:
    """The patterns above match the shapes the old code had (so the tests can fail)."""
    assert SQL.search("SELECT a.* FROM allocations a")
    assert SQL.search("UPDATE doors SET status = 'available'")
    old = "UPDATE allocations SET status = 'expired', expired_at = %s WHERE allocation_id = %s"
    assert STATUS_LITERAL.search(STATE_UPDATE.search(old).group(2))  # type: ignore[union-attr]
    guarded = "UPDATE allocations SET status = %(to)s WHERE status = 'reserved'"
    assert not STATUS_LITERAL.search(STATE_UPDATE.search(guarded).group(2))  # type: ignore[union-attr]
    assert not SQL.search("Select a door for the parcel")
