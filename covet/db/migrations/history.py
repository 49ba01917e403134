"""Read a linear migration history without importing alembic or the migration scripts.

The start-up check (:func:`~covet.db.migrations.ensure_migrated`) and the
``/ready`` probe only need the revision ids in order. alembic's
``ScriptDirectory`` gets them by importing every script, and each script
imports alembic and SQLAlchemy: about 30 MB of RSS in every worker that
otherwise never touches SQLAlchemy (covet's ORM runs on its own adapters).

This module parses the scripts' ``revision``/``down_revision`` assignments
with :mod:`ast` instead. It handles the common case only, a single chain of
literal ids with no ``depends_on``; for anything else (branches, merges,
computed ids, dependencies) it returns ``None`` and the caller falls back to
alembic, so the answer is always alembic's.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("LinearHistory", "read_linear_history")

# alembic's own test for a revision file (alembic.script.base._only_source_rev_file).
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
_NAMES = frozenset({"revision", "down_revision", "depends_on"})
_NO_VALUE = object()


@dataclass(frozen=True, slots=True)
class LinearHistory:
    """The revision ids of a single-chain migration history, oldest first."""

    revisions: tuple[str, ...]


def _assignments(source: str) -> dict[str, Any] | None:
    """Return the literal module-level values of ``_NAMES`` (None if one is not literal)."""
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in _NAMES:
            try:
                found[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, RecursionError):
                return None
    return found


def read_linear_history(versions: Path) -> LinearHistory | None:
    """Return the history in ``versions`` when it is one chain of literal ids, else None.

    Args:
        versions: The migrations' ``versions`` directory.
    """
    if not versions.is_dir():
        return None
    parent_of: dict[str, str | None] = {}
    for path in versions.iterdir():
        if not path.is_file() or not _REVISION_FILE.match(path.name):
            continue
        try:
            values = _assignments(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
        if values is None:
            return None
        revision = values.get("revision", _NO_VALUE)
        down = values.get("down_revision", _NO_VALUE)
        if values.get("depends_on") is not None or not isinstance(revision, str):
            return None
        if not (down is None or isinstance(down, str)) or revision in parent_of:
            return None
        parent_of[revision] = down
    child_of: dict[str | None, str] = {}
    for revision, down in parent_of.items():
        if down in child_of or (down is not None and down not in parent_of):
            return None  # a branch point, or a parent that is not here
        child_of[down] = revision
    chain: list[str] = []
    current = child_of.get(None)
    while current is not None:
        chain.append(current)
        current = child_of.get(current)
    if len(chain) != len(parent_of):
        return None  # a cycle, or more than one base
    return LinearHistory(tuple(chain))
