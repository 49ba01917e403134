"""Recognising raw statements that leave session state on a pooled connection.

A connection goes back to the pool as it is, so a statement such as MySQL's
``SET time_zone`` or SQLite's ``PRAGMA foreign_keys = OFF`` would reach the next
user of the connection. Each backend describes such statements with one
regular expression (see its ``session`` module); a connection that ran one is
closed on release instead of reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import re

__all__ = ("SessionStatements",)


class SessionStatements:
    """Tell which statements change the session, remembering the ones that do not.

    The ORM sends the same few strings again and again: callers test
    ``sql not in statements.harmless`` first, so a known statement costs one set
    lookup (less than a cached call), and :meth:`changes_session` runs the
    expression only on a statement not seen before.

    Args:
        pattern: Matches a statement (or a statement within a string of several)
            that leaves session state behind.
        limit: How many harmless statements to remember before starting afresh.
    """

    def __init__(self, pattern: re.Pattern[str], *, limit: int = 2048) -> None:
        self.pattern = pattern
        self.limit = limit
        #: Statements known to leave the session alone.
        self.harmless: set[str] = set()

    def changes_session(self, sql: str) -> bool:
        """Tell whether ``sql`` leaves session state that the next user must not inherit."""
        if self.pattern.search(sql) is not None:
            return True
        harmless = self.harmless
        if len(harmless) >= self.limit:
            harmless.clear()
        harmless.add(sql)
        return False
