"""The errors of the cache: one root, :class:`CacheError`, a ``CovetError``."""

from __future__ import annotations

from covet.exceptions import CovetError

__all__ = ("CacheError", "CacheUnavailableError", "CacheValueError", "InvalidCacheKeyError")


class CacheError(CovetError):
    """Root of every error the cache raises on purpose."""


class InvalidCacheKeyError(CacheError, ValueError):
    """A key is not a string, is too long, or holds a control character."""


class CacheValueError(CacheError, ValueError):
    """``incr()``/``decr()`` found no value, or a value that is not an integer.

    A ``ValueError``, as Django raises for the same mistakes.
    """


class CacheUnavailableError(CacheError, ConnectionError):
    """The cache server cannot be reached right now (Redis down, connection lost).

    Apps answer it with ``503 Service Unavailable`` and ``Retry-After``, like
    :class:`covet.db.DatabaseUnavailableError`; catch it around a cache call
    to carry on without the cache instead.
    """

    status_code = 503
    retry_after = 2
