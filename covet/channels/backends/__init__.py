"""Channels backends by URL scheme, imported only when a ``Channels`` uses them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.channels.backends.base import ChannelBackend

__all__ = ("SCHEMES", "backend_class")

#: URL scheme -> ``module:class`` of its backend.
SCHEMES = {
    "memory": "covet.channels.backends.memory:MemoryBackend",
    "redis": "covet.channels.backends.redis:RedisBackend",
    "rediss": "covet.channels.backends.redis:RedisBackend",
    "unix": "covet.channels.backends.redis:RedisBackend",
    "postgresql": "covet.channels.backends.postgres:PostgresBackend",
    "postgres": "covet.channels.backends.postgres:PostgresBackend",
}


def backend_class(url: str) -> type[ChannelBackend]:
    """Return the backend class for ``url``'s scheme.

    Raises:
        ImproperlyConfigured: If the scheme is not one of :data:`SCHEMES`.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    target = SCHEMES.get(scheme)
    if target is None:
        raise ImproperlyConfigured(
            f"Unsupported channels URL {url!r}. Use 'memory://', 'redis://host:6379/0' or "
            "'postgresql://user@host/db'."
        )
    module_name, _, name = target.partition(":")
    backend: type[ChannelBackend] = getattr(importlib.import_module(module_name), name)
    return backend
