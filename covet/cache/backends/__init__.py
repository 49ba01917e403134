"""Cache backends by URL scheme, imported only when a cache uses them.

==================================  ===========================================================
URL                                 Backend
==================================  ===========================================================
``memory://``                       :class:`~covet.cache.backends.memory.MemoryBackend`
                                    (``?max_entries=10000&max_bytes=...``)
``redis://host:6379/0``             :class:`~covet.cache.backends.redis.RedisBackend` (also
                                    ``rediss://``, ``unix://``; other options go to redis-py)
``database://`` or ``database://a`` :class:`~covet.cache.database.DatabaseBackend` on the
                                    default database or alias ``a``
                                    (``?cull_every=100&cull_batch=1000&max_entries=...``)
==================================  ===========================================================

Every URL also takes the cache's own options: ``key_prefix``, ``version`` and
``timeout`` (the default TTL in seconds, or ``none``).
"""

from __future__ import annotations

import importlib
import urllib.parse
from typing import TYPE_CHECKING, Any

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.cache.backends.base import CacheBackend

__all__ = ("CACHE_OPTIONS", "SCHEMES", "create_backend", "masked")

#: URL scheme -> ``module:class`` of its backend.
SCHEMES = {
    "memory": "covet.cache.backends.memory:MemoryBackend",
    "redis": "covet.cache.backends.redis:RedisBackend",
    "rediss": "covet.cache.backends.redis:RedisBackend",
    "unix": "covet.cache.backends.redis:RedisBackend",
    "database": "covet.cache.database:DatabaseBackend",
}
#: Query options every cache URL accepts, read by :class:`~covet.cache.Cache` itself.
CACHE_OPTIONS = ("key_prefix", "timeout", "version")
_REDIS = "covet.cache.backends.redis:RedisBackend"


def masked(url: str) -> str:
    """Hide a password in ``url`` for repr() and error messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.partition(':')[0]}:***@{host}"


def create_backend(url: str) -> tuple[CacheBackend, dict[str, str]]:
    """Build the backend ``url`` names; return it and the cache options found in the URL.

    Raises:
        ImproperlyConfigured: For an unknown scheme, a malformed or unknown
            option, or a bad option value.
        MissingDependencyError: If the backend's driver is not installed.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    target = SCHEMES.get(scheme) if "://" in url else None
    if target is None:
        raise ImproperlyConfigured(
            f"Unsupported cache URL {masked(url)!r}. Use 'memory://', "
            "'redis://127.0.0.1:6379/0' or 'database://' (the default database)."
        )
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    cache_options = {name: value for name, value in pairs if name in CACHE_OPTIONS}
    rest = [(name, value) for name, value in pairs if name not in CACHE_OPTIONS]
    module_name, _, class_name = target.partition(":")
    backend_class: Any = getattr(importlib.import_module(module_name), class_name)
    if target == _REDIS:
        # redis-py reads its own options (socket_timeout=...) from the query.
        clean = parts._replace(query=urllib.parse.urlencode(rest))
        return backend_class(urllib.parse.urlunsplit(clean)), cache_options
    options = dict(rest)
    if len(options) != len(rest):
        raise ImproperlyConfigured(f"Cache URL {masked(url)!r} repeats an option. Give each once.")
    backend: CacheBackend = backend_class.from_options(options, parts.netloc + parts.path)
    if options:
        raise ImproperlyConfigured(
            f"Unknown option(s) {', '.join(map(repr, sorted(options)))} in cache URL "
            f"{masked(url)!r}. The {scheme}:// cache takes {_known(backend_class)}."
        )
    return backend, cache_options


def _known(backend_class: Any) -> str:
    names = {
        "MemoryBackend": ("max_entries", "max_bytes"),
        "DatabaseBackend": ("cull_every", "cull_batch", "max_entries"),
    }.get(backend_class.__name__, ())
    return ", ".join((*names, *CACHE_OPTIONS))
