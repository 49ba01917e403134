"""Sessions: ``request.session``, the stores that keep it, and the middleware.

- :class:`SessionMiddleware` loads the session named by the signed session
  cookie into ``request.session`` and saves it with the response.
- Stores: :class:`CookieStore` (the default: the whole session in the signed
  cookie), :class:`MemoryStore` (one process), :class:`RedisStore` and
  :class:`DatabaseStore` (server-side, shared by every worker, revocable).

Dependencies point one way: :mod:`covet.auth` uses sessions, never the
reverse. :class:`DatabaseStore` (and its model) is imported on first use, so
importing :mod:`covet.sessions` registers no database model; list
``"covet.sessions.database"`` in ``[tool.covet] models`` to migrate its table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.sessions.middleware import SessionMiddleware
from covet.sessions.stores import (
    MAX_COOKIE_SIZE,
    SESSION_USER_KEY,
    CookieStore,
    MemoryStore,
    RedisStore,
    Session,
    SessionChanges,
    SessionRecord,
    SessionStore,
    SessionTooLargeError,
    generate_session_key,
)

if TYPE_CHECKING:
    from covet.sessions.database import DatabaseSession, DatabaseStore

__all__ = (
    "MAX_COOKIE_SIZE",
    "SESSION_USER_KEY",
    "CookieStore",
    "DatabaseSession",
    "DatabaseStore",
    "MemoryStore",
    "RedisStore",
    "Session",
    "SessionChanges",
    "SessionMiddleware",
    "SessionRecord",
    "SessionStore",
    "SessionTooLargeError",
    "generate_session_key",
)

_LAZY = {"DatabaseSession", "DatabaseStore"}


def __getattr__(name: str) -> Any:
    # PEP 562: the database store imports the ORM and defines a model, so it is
    # loaded only when asked for.
    if name in _LAZY:
        from covet.sessions import database

        return getattr(database, name)
    raise AttributeError(f"module 'covet.sessions' has no attribute {name!r}")
