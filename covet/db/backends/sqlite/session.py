"""Which statements leave connection state behind on a pooled SQLite connection.

A pooled connection goes to the next user as it is, so a raw
``PRAGMA foreign_keys = OFF`` would switch off foreign key enforcement for
whoever uses the connection next (covet turns it on for every connection).
After a statement that :data:`SESSION_STATEMENTS` matches (a ``PRAGMA`` that
assigns, ``ATTACH``/``DETACH``, a temporary table, view or trigger), the pool
closes the connection on release instead of reusing it.
"""

from __future__ import annotations

import re

from covet.db.backends.base.session import SessionStatements

__all__ = ("SESSION_STATEMENTS", "TRANSACTION_SQL")

# Where a statement starts: the string's start or a ";", then blanks and comments.
_START = r"(?:^|;)(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_SESSION_SQL = re.compile(
    _START + r"(?:PRAGMA\s[^;]*=|ATTACH\b|DETACH\b"
    r"|CREATE\s+TEMP(?:ORARY)?\s+(?:TABLE|VIEW|TRIGGER)\b)",
    re.IGNORECASE | re.DOTALL,
)


#: The statements that make the pool close a connection on release.
SESSION_STATEMENTS = SessionStatements(_SESSION_SQL)

#: Transaction control anywhere in a string: never run on the shared connection, where an
#: open transaction would take in every other statement queued there.
TRANSACTION_SQL = re.compile(
    _START + r"(?:BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE | re.DOTALL
)
