"""The cache: ``from covet.cache import cache``, then ``await cache.get("key")``.

::

    from covet.cache import cache, cache_page

    await cache.set("greeting", "hello", ttl=60)
    await cache.get("greeting")                       # "hello"
    report = await cache.get_or_set("report", build_report, ttl=300)  # built once

    @app.get("/prices")
    @cache_page(60)
    async def prices(request): ...

Backends by URL: ``memory://`` (a bounded LRU in this process),
``redis://host:6379/0`` and ``database://`` (the ``covet_cache`` table of the
app's database). ``cache`` is the default cache, configured by ``CACHE_URL``
or ``cache_url`` in ``[tool.covet]``; ``caches["name"]`` the named ones. The
fragment tag ``{% cache %}`` is :class:`CacheExtension`. See ``docs/cache.md``.

The database backend (and its model) is imported on first use, so importing
:mod:`covet.cache` registers no database model; list ``"covet.cache.database"``
in ``[tool.covet] models`` to migrate its table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.cache.backends.base import CacheBackend
from covet.cache.backends.memory import MemoryBackend
from covet.cache.core import DEFAULT_TIMEOUT, TTL, Cache
from covet.cache.exceptions import (
    CacheError,
    CacheUnavailableError,
    CacheValueError,
    InvalidCacheKeyError,
)
from covet.cache.fragments import CacheExtension, fragment_key
from covet.cache.keys import MAX_KEY_LENGTH, make_key
from covet.cache.pages import cache_page
from covet.cache.registry import DEFAULT_CACHE_ALIAS, CacheHandler, cache, caches
from covet.cache.serializers import JSONSerializer, PickleSerializer, Serializer

if TYPE_CHECKING:
    from covet.cache.backends.redis import RedisBackend
    from covet.cache.database import CacheEntry, DatabaseBackend

__all__ = (
    "DEFAULT_CACHE_ALIAS",
    "DEFAULT_TIMEOUT",
    "MAX_KEY_LENGTH",
    "TTL",
    "Cache",
    "CacheBackend",
    "CacheEntry",
    "CacheError",
    "CacheExtension",
    "CacheHandler",
    "CacheUnavailableError",
    "CacheValueError",
    "DatabaseBackend",
    "InvalidCacheKeyError",
    "JSONSerializer",
    "MemoryBackend",
    "PickleSerializer",
    "RedisBackend",
    "Serializer",
    "cache",
    "cache_page",
    "caches",
    "fragment_key",
    "make_key",
)

_LAZY = {
    "CacheEntry": "covet.cache.database",
    "DatabaseBackend": "covet.cache.database",
    "RedisBackend": "covet.cache.backends.redis",
}


def __getattr__(name: str) -> Any:
    # PEP 562: the database backend defines a model and imports the ORM, and the
    # Redis one imports covet.redis: both are loaded only when asked for.
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'covet.cache' has no attribute {name!r}")
