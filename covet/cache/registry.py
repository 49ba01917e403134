"""The configured caches: ``caches["name"]``, and ``cache``, the default one.

Where the configuration comes from, strongest first:

1. :meth:`CacheHandler.configure`, called by the application (with its
   :class:`~covet.config.Settings`, with URLs or with :class:`Cache` objects);
2. otherwise, on first use, the project's settings, read like ``DATABASE_URL``
   (:func:`covet.config.load_settings`): the ``CACHE_URL`` environment
   variable (or ``.env``), then ``cache_url`` in ``[tool.covet]``, and named
   caches from ``[tool.covet.caches]``;
3. outside a project, ``CACHE_URL``, else ``"memory://"``.

``memory://`` is per process: with several workers, each has its own cache,
so use ``redis://`` or ``database://`` for anything they must share.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, cast

from covet.cache.core import Cache
from covet.config import find_project_root, load_settings
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Iterator

    from covet.config import Settings

__all__ = ("DEFAULT_CACHE_ALIAS", "CacheHandler", "cache", "caches")

#: The name of the default cache.
DEFAULT_CACHE_ALIAS = "default"


class CacheHandler:
    """The caches of the application, by name, each created on first use."""

    def __init__(self) -> None:
        self._definitions: dict[str, str | Cache] | None = None
        self._caches: dict[str, Cache] = {}
        self._lock = threading.Lock()

    def configure(self, settings: Settings | None = None, /, **caches: str | Cache) -> None:
        """Define the caches, replacing any earlier definition.

        Args:
            settings: Project settings: ``cache_url`` becomes the default cache
                and ``caches`` the named ones.
            **caches: More caches, by name: a URL or a :class:`Cache`
                (``default=`` sets the default one).

        Raises:
            ImproperlyConfigured: If a definition is neither a URL nor a Cache.
        """
        definitions: dict[str, str | Cache] = {}
        if settings is not None:
            definitions.update(settings.caches)
            if settings.cache_url:
                definitions[DEFAULT_CACHE_ALIAS] = settings.cache_url
        definitions.update(caches)
        for name, definition in definitions.items():
            if not isinstance(definition, str | Cache):
                raise ImproperlyConfigured(
                    f"Cache {name!r} is defined as {definition!r}. Give a URL such as "
                    "'redis://127.0.0.1:6379/0' or a Cache object."
                )
        definitions.setdefault(DEFAULT_CACHE_ALIAS, os.environ.get("CACHE_URL") or "memory://")
        with self._lock:
            self._definitions = definitions
            self._caches = {}

    def _load(self) -> dict[str, str | Cache]:
        definitions = self._definitions
        if definitions is not None:
            return definitions
        root = find_project_root()
        self.configure(None if root is None else load_settings(root))
        assert self._definitions is not None  # noqa: S101 - set by configure()
        return self._definitions

    def __getitem__(self, name: str) -> Cache:
        """Return the cache called ``name``, creating it on first use.

        Raises:
            ImproperlyConfigured: If no cache of that name is defined, or its URL is bad.
        """
        found = self._caches.get(name)
        if found is not None:
            return found
        definitions = self._load()
        with self._lock:
            found = self._caches.get(name)
            if found is not None:
                return found
            definition = definitions.get(name)
            if definition is None:
                raise ImproperlyConfigured(
                    f"No cache named {name!r} is configured (known: "
                    f'{", ".join(sorted(definitions))}). Add {name} = "memory://" under '
                    f"[tool.covet.caches], or call caches.configure({name}='redis://...')."
                )
            found = definition if isinstance(definition, Cache) else Cache(definition)
            self._caches[name] = found
            return found

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._load()))

    async def close(self) -> None:
        """Close every cache created so far, for the running event loop (at shutdown)."""
        for created in list(self._caches.values()):
            with contextlib.suppress(Exception):
                await created.close()


#: The application's caches by name (see :class:`CacheHandler`).
caches = CacheHandler()


class _DefaultCache:
    """Stands for ``caches["default"]``, looked up at each use (so configure() may come later)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(caches[DEFAULT_CACHE_ALIAS], name)

    def __repr__(self) -> str:
        return f"<default cache: {caches[DEFAULT_CACHE_ALIAS]!r}>"


#: The default cache: ``await cache.get("key")``.
cache = cast("Cache", _DefaultCache())
