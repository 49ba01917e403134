"""Which statements leave session state behind on a pooled PostgreSQL connection.

covet's pool resets a returned connection only when a statement changed its
session (issue 22): asyncpg's own pool sent a reset query on every release,
a round trip per checkout. :func:`changes_session` tells, once per distinct
SQL text, whether a statement needs that reset (or the connection closed).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from covet.db.backends.base import BaseConnection

__all__ = ("RESET_SQL", "changes_session", "note_raw_transaction")

# Statements after which a connection must not go to the next user as it is: session
# settings (SET, except SET LOCAL / SET TRANSACTION / SET CONSTRAINTS, which end with the
# transaction), LISTEN, held cursors, temporary tables, session advisory locks. Anywhere
# in the string: a simple-protocol execute() may carry several statements.
# A statement starts at the string's start or a ";", then blanks and comments ("/* c */ SET"
# must not slip through). A DO block can run anything (EXECUTE 'SET ...'): it counts too.
_START = r"(?:^|;)(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_SESSION_SQL = re.compile(
    _START + r"(?:SET(?!\s+(?:LOCAL|TRANSACTION|CONSTRAINTS|SESSION\s+CHARACTERISTICS)\b)"
    r"|RESET|LISTEN|UNLISTEN|DECLARE|DISCARD|LOAD|DO"
    r"|CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP(?:ORARY)?)\b"
    r"|\bINTO\s+TEMP(?:ORARY)?\b"
    r"|\b(?:set_config|pg_advisory_lock|pg_advisory_lock_shared|pg_try_advisory_lock"
    r"|pg_try_advisory_lock_shared)\s*\(",
    re.IGNORECASE | re.DOTALL,
)
# A prepared statement outlives RESET ALL, and DEALLOCATE ALL would drop asyncpg's own
# cached statements too: a connection that ran PREPARE is closed on release instead.
_PREPARE_SQL = re.compile(_START + r"PREPARE\b", re.IGNORECASE | re.DOTALL)
# What asyncpg's pool sends on release (Connection.get_reset_query() on PostgreSQL 12+),
# plus temporary tables; run only after _changes_session() matched.
RESET_SQL = "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL; DISCARD TEMP"


@functools.lru_cache(maxsize=1024)
def changes_session(sql: str) -> int:
    """Tell what a statement leaves behind for the next user: 0 nothing, 1 reset, 2 close.

    Cached: the ORM sends the same few statement strings again and again, so the
    regular expressions run once per distinct SQL text.
    """
    if _PREPARE_SQL.search(sql):
        return 2
    return 1 if _SESSION_SQL.search(sql) else 0


def note_raw_transaction(conn: BaseConnection) -> None:
    """Mark ``conn`` as in a transaction when a raw ``BEGIN`` left the server in one.

    The pool rolls such a transaction back before the next user, as it does
    covet's own. Checked on every return to the pool (outside transactions).
    """
    if not (conn.in_transaction or conn.broken or conn.dirty):
        # try, not contextlib.suppress(): this runs once per statement.
        try:
            if conn.raw.is_in_transaction():
                conn.in_transaction = True
        except AttributeError:  # asyncpg drops its protocol once the connection is aborted
            conn.broken = True
