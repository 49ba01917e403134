"""Which statements leave session state behind on a pooled MySQL/MariaDB connection.

A connection goes back to the pool as it is, so a raw ``SET time_zone``,
``SET @var``, a temporary table or a ``GET_LOCK()`` would otherwise reach the
next user of the connection (and the ORM's own statements: covet relies on
the session's ``time_zone = '+00:00'`` and ``sql_mode``). A statement that
:func:`changes_session` matches makes the pool close the connection on
release instead (MySQL has no cheap equivalent of PostgreSQL's ``RESET ALL``
over aiomysql); the next checkout opens a fresh one with covet's settings.
"""

from __future__ import annotations

import re

__all__ = ("changes_session", "harmless")

# Where a statement starts: the string's start or a ";", then blanks and comments.
_START = r"(?:^|;)(?:\s+|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|/\*.*?\*/)*"
_SESSION_SQL = re.compile(
    # SET, except SET TRANSACTION (the next transaction only) and MariaDB's per-statement
    # SET STATEMENT ... FOR; USE, LOCK TABLES, temporary tables, PREPARE.
    _START + r"(?:SET(?!\s+(?:TRANSACTION|STATEMENT)\b)|USE|LOCK\s+TABLES?|PREPARE"
    r"|CREATE\s+TEMPORARY)\b"
    # User variables assigned anywhere (SELECT @a := 1, SELECT ... INTO @a), named locks.
    r"|@\w+\s*:=|\bINTO\s+@|\bGET_LOCK\s*\(",
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
