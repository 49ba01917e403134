"""Which statements leave connection state behind on a pooled SQLite connection.

A pooled connection goes to the next user as it is, so a raw
``PRAGMA foreign_keys = OFF`` would switch off foreign key enforcement for
whoever uses the connection next (covet turns it on for every connection).
After a statement that :func:`changes_session` matches (a ``PRAGMA`` that
assigns, ``ATTACH``/``DETACH``, a temporary table, view or trigger), the pool
closes the connection on release instead of reusing it.
"""

from __future__ import annotations

import re

__all__ = ("changes_session", "harmless")

# Where a statement starts: the string's start or a ";", then blanks and comments.
_START = r"(?:^|;)(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_SESSION_SQL = re.compile(
    _START + r"(?:PRAGMA\s[^;]*=|ATTACH\b|DETACH\b"
    r"|CREATE\s+TEMP(?:ORARY)?\s+(?:TABLE|VIEW|TRIGGER)\b)",
    re.IGNORECASE | re.DOTALL,
)


#: Statements known to leave the session alone: the ORM sends the same few strings again
#: and again, and a set lookup (``sql not in harmless``) costs less than a cached call.
harmless: set[str] = set()
_HARMLESS_LIMIT = 2048


def changes_session(sql: str) -> bool:
    """Tell whether ``sql`` leaves session state that the next user must not inherit.

    Statements that do not are remembered in :data:`harmless`; callers test
    ``sql not in harmless`` first, so a known statement costs one set lookup.
    """
    if _SESSION_SQL.search(sql) is not None:
        return True
    if len(harmless) >= _HARMLESS_LIMIT:
        harmless.clear()
    harmless.add(sql)
    return False
