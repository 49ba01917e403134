"""Which statements leave session state behind on a pooled MySQL/MariaDB connection.

A connection goes back to the pool as it is, so a raw ``SET time_zone``,
``SET @var``, a temporary table or a ``GET_LOCK()`` would otherwise reach the
next user of the connection (and the ORM's own statements: covet relies on
the session's ``time_zone = '+00:00'`` and ``sql_mode``). A statement that
:data:`SESSION_STATEMENTS` matches makes the pool close the connection on
release instead (MySQL has no cheap equivalent of PostgreSQL's ``RESET ALL``
over aiomysql); the next checkout opens a fresh one with covet's settings.
"""

from __future__ import annotations

import re

from covet.db.backends.base.session import SessionStatements

__all__ = ("SESSION_STATEMENTS",)

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


#: The statements that make the pool close a connection on release.
SESSION_STATEMENTS = SessionStatements(_SESSION_SQL)
