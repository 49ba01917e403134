"""Database backends, one module per dialect, loaded lazily from the URL scheme.

Only the dialect modules import drivers, and only inside ``connect()``, so
``Database("postgresql://...")`` can be built (and its ``ops`` used to compile
SQL) without asyncpg installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from covet.db.backends.base import BaseBackend

__all__ = ("SCHEMES", "get_backend_class")

#: URL scheme -> "module:Class". ``scheme+driver`` forms name the driver covet uses anyway.
SCHEMES: dict[str, str] = {
    "sqlite": "covet.db.backends.sqlite:SQLiteBackend",
    "sqlite+aiosqlite": "covet.db.backends.sqlite:SQLiteBackend",
    "postgresql": "covet.db.backends.postgres:PostgresBackend",
    "postgres": "covet.db.backends.postgres:PostgresBackend",
    "postgresql+asyncpg": "covet.db.backends.postgres:PostgresBackend",
    "mysql": "covet.db.backends.mysql:MySQLBackend",
    "mariadb": "covet.db.backends.mysql:MySQLBackend",
    "mysql+aiomysql": "covet.db.backends.mysql:MySQLBackend",
    "mariadb+aiomysql": "covet.db.backends.mysql:MySQLBackend",
}


def get_backend_class(scheme: str) -> type[BaseBackend]:
    """Return the backend class for a URL scheme such as ``"postgresql"``.

    Raises:
        ImproperlyConfigured: The scheme is not one covet knows.
    """
    target = SCHEMES.get(scheme.lower())
    if target is None:
        known = ", ".join(sorted(SCHEMES))
        raise ImproperlyConfigured(f"Unknown database URL scheme {scheme!r}. Use one of: {known}.")
    module_name, _, class_name = target.partition(":")
    backend: type[BaseBackend] = getattr(importlib.import_module(module_name), class_name)
    return backend
