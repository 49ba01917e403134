"""Rate limiting: rates, algorithms, storage backends, key functions, middleware.

- :class:`RateLimiter` counts hits per key with a fixed-window, sliding-window
  or token-bucket algorithm; :func:`rate_limit` limits one route and
  :class:`RateLimitMiddleware` the whole app.
- Backends: :class:`MemoryBackend` (one process), :class:`RedisBackend` and
  :class:`DatabaseBackend` (shared by every worker).

:class:`DatabaseBackend` (and its model) is imported on first use, so importing
:mod:`covet.ratelimit` registers no database model; list
``"covet.ratelimit.database"`` in ``[tool.covet] models`` to migrate its table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.ratelimit.limiter import (
    Algorithm,
    KeyFunction,
    MemoryBackend,
    Rate,
    RateLimitBackend,
    RateLimiter,
    RateLimitResult,
    RedisBackend,
    client_ip,
    key_by_ip,
    key_by_user,
    key_by_user_and_ip,
    parse_rate,
    rate_limit,
)
from covet.ratelimit.middleware import RateLimitMiddleware

if TYPE_CHECKING:
    from covet.ratelimit.database import DatabaseBackend, RateLimitCounter

__all__ = (
    "Algorithm",
    "DatabaseBackend",
    "KeyFunction",
    "MemoryBackend",
    "Rate",
    "RateLimitBackend",
    "RateLimitCounter",
    "RateLimitMiddleware",
    "RateLimitResult",
    "RateLimiter",
    "RedisBackend",
    "client_ip",
    "key_by_ip",
    "key_by_user",
    "key_by_user_and_ip",
    "parse_rate",
    "rate_limit",
)

_LAZY = {"DatabaseBackend", "RateLimitCounter"}


def __getattr__(name: str) -> Any:
    # PEP 562: the database backend imports the ORM and defines a model, so it is
    # loaded only when asked for.
    if name in _LAZY:
        from covet.ratelimit import database

        return getattr(database, name)
    raise AttributeError(f"module 'covet.ratelimit' has no attribute {name!r}")
