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

__all__ = ("SCHEMES", "get_backend_class", "url_form")

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


# The URL shapes listed when a scheme is unknown, one per backend.
_EXAMPLES = (
    "sqlite:///PATH, postgresql://USER:PASSWORD@HOST:PORT/DATABASE or "
    "mysql://USER:PASSWORD@HOST:PORT/DATABASE"
)
_SERVER_FORM = "{scheme}://USER:PASSWORD@HOST:PORT/DATABASE"


def get_backend_class(scheme: str, *, url: str | None = None) -> type[BaseBackend]:
    """Return the backend class for a URL scheme such as ``"postgresql"``.

    Args:
        scheme: The URL scheme.
        url: The whole URL, password already masked, named in the error.

    Raises:
        ImproperlyConfigured: The scheme is not one covet knows.
    """
    target = SCHEMES.get(scheme.lower())
    if target is None:
        where = f" in the database URL {url!r}" if url is not None else ""
        known = ", ".join(sorted(SCHEMES))
        raise ImproperlyConfigured(
            f"Unknown database URL scheme {scheme!r}{where}. Use {_EXAMPLES} (known schemes: "
            f"{known})."
        )
    return _load(target)


def url_form(scheme: str) -> str:
    """Return the shape of a URL with ``scheme``, for error messages.

    ``"postgresql://USER:PASSWORD@HOST:PORT/DATABASE"`` for a server backend,
    the file forms for SQLite; a generic server shape for an unknown scheme.
    """
    target = SCHEMES.get(scheme.lower())
    form = _load(target).url_form if target is not None else _SERVER_FORM
    return form.format(scheme=scheme.lower())


def _load(target: str) -> type[BaseBackend]:
    module_name, _, class_name = target.partition(":")
    backend: type[BaseBackend] = getattr(importlib.import_module(module_name), class_name)
    return backend
