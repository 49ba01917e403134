"""Dialect differences live in ``covet/db/backends/``: nothing else branches on a vendor.

Code elsewhere asks ``db.features`` (capabilities), ``db.ops`` (SQL spelling) or
``db.backend.creation`` (migration engine and lock, test databases), so that a
new dialect is one new module under ``covet/db/backends/`` plus its scheme in
``covet.db.backends.SCHEMES``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "covet"
BACKENDS = PACKAGE / "db" / "backends"

_NAMES = r"(?:postgres|postgresql|mysql|mariadb|sqlite)"
_QUOTED = rf"""['"]{_NAMES}['"]"""
#: A vendor/dialect compared with anything, or a dialect name compared or tested for membership.
BRANCHES = (
    re.compile(r"\b(?:vendor|dialect|dialect_name|dialect\.name)\s*(?:==|!=|\bin\b|\bnot in\b)"),
    re.compile(rf"(?:==|!=)\s*{_QUOTED}"),
    re.compile(rf"{_QUOTED}\s*(?:==|!=)"),
    re.compile(rf"\bin\s*[(\[{{][^)\]}}]*{_QUOTED}"),
)


def dialect_branches(source: str) -> list[tuple[int, str]]:
    """Return the (line number, line) pairs of ``source`` that branch on a dialect name."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0]
        if any(pattern.search(code) for pattern in BRANCHES):
            found.append((number, line.strip()))
    return found


@pytest.mark.parametrize(
    "line",
    [
        'if target.vendor == "mysql":',
        "if db.vendor != 'sqlite':",
        'if dialect == "postgresql":',
        'render = autogen_context.dialect.name != "postgresql"',
        'if "sqlite" == name:',
        'if scheme in ("postgres", "postgresql"):',
        "if vendor in {'mysql', 'mariadb'}:",
    ],
)
def test_the_check_finds_dialect_branches(line: str) -> None:
    assert dialect_branches(line) == [(1, line)]


@pytest.mark.parametrize(
    "line",
    [
        "if database.features.supports_transactional_ddl:",
        'dialect_name = database.ops.sqlalchemy_dialect  # e.g. "postgresql"',
        'if name.startswith("sqlite_"):',
        'raise ImproperlyConfigured("Use SQLite, PostgreSQL or MySQL.")',
    ],
)
def test_the_check_passes_capability_questions(line: str) -> None:
    assert dialect_branches(line) == []


def test_no_dialect_branches_outside_the_backends() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if BACKENDS not in path.parents
        for number, line in dialect_branches(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], (
        "Code outside covet/db/backends/ branches on a dialect name:\n"
        + "\n".join(offenders)
        + "\nAsk db.features / db.ops / db.backend.creation instead, and put the difference "
        "in covet/db/backends/<dialect>.py."
    )
