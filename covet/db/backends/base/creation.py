"""How tools outside the app reach a database: alembic's engine, the migration lock, test databases.

Each dialect module subclasses :class:`BaseCreation` (as Django's
``creation.py`` does), so ``covet migrate`` and the pytest plugin never ask
which database they talk to: the migration engine, the lock statements and
the test database's DDL and URL all come from here.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from covet.db.backends.base.backend import BaseBackend

__all__ = ("BaseCreation", "url_with_option", "url_with_path")


def url_with_path(url: str, name: str) -> str:
    """Return ``url`` naming the database ``name`` (its path) instead of its own."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def url_with_option(url: str, key: str, value: str) -> str:
    """Return ``url`` with the query option ``key`` set to ``value`` (replacing any)."""
    parts = urllib.parse.urlsplit(url)
    options = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != key]
    query = urllib.parse.urlencode([*options, (key, value)])
    return urllib.parse.urlunsplit(parts._replace(query=query))


class BaseCreation:
    """The migration engine and lock, and the test database, of one backend.

    Args:
        backend: The (possibly unconnected) backend whose URL and options are used.
    """

    #: Does a test run get a database (or schema) of its own, created on the server?
    creates_test_database: ClassVar[bool] = True

    def __init__(self, backend: BaseBackend) -> None:
        self.backend = backend

    # -- migrations ------------------------------------------------------------------------

    def migration_engine(self) -> Any:
        """Return a SQLAlchemy async engine (``NullPool``) set up like the app's connections."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement migration_engine(). Return a "
            "SQLAlchemy AsyncEngine over the backend's driver."
        )

    def inspection_engine(self) -> Any | None:
        """Return an engine that reads the schema from a second connection (debug drift check).

        None when no second connection can see the database (an in-memory
        SQLite database). The default is :meth:`migration_engine`.
        """
        return self.migration_engine()

    def migration_lock_file(self) -> str | None:
        """Return the file whose ``.migrate.lock`` sibling serializes migration runs.

        None (the default) means the server takes the lock: see
        :meth:`acquire_migration_lock`.
        """
        return None

    def migration_lock_id(self) -> bytes:
        """Return a digest naming this database (host, port, name, search path) for the lock."""
        url, options = self.backend.url, self.backend.settings
        scope = f"{url.host}:{url.port}/{url.database}/{options.get('search_path') or ''}"
        return hashlib.sha256(f"covet.migrations:{scope}".encode()).digest()

    def acquire_migration_lock(self, connection: Any, timeout: float) -> bool:
        """Take the session-level migration lock on a SQLAlchemy ``connection``.

        Args:
            connection: A synchronous SQLAlchemy connection (inside ``run_sync``).
            timeout: Seconds to wait for another run to release the lock.

        Returns:
            Whether the lock was taken; False when another run held it for ``timeout``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement acquire_migration_lock(). Take a "
            "session-level lock, or return a lock file from migration_lock_file()."
        )

    def release_migration_lock(self, connection: Any) -> None:
        """Release the lock :meth:`acquire_migration_lock` took on ``connection``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement release_migration_lock()."
        )

    # -- test databases --------------------------------------------------------------------

    def test_database_url(self, url: str, name: str) -> str:
        """Return the URL of the test database ``name`` created next to ``url``."""
        return url

    def create_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Return the statements creating the test database ``name`` (run once connected)."""
        return ()

    def drop_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Return the statements dropping the test database ``name``."""
        return ()
