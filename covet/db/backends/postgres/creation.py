"""PostgreSQL's migration engine, migration lock and test schemas."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from covet.db.backends.base import BaseCreation, url_with_option

if TYPE_CHECKING:
    from covet.db.backends.postgres import PostgresBackend

__all__ = ("PostgresCreation",)


class PostgresCreation(BaseCreation):
    """PostgreSQL's migration engine, advisory lock, and one schema per test run."""

    backend: PostgresBackend

    def migration_engine(self) -> Any:
        """Return an asyncpg engine whose connections get the app's DSN and server settings."""
        import urllib.parse

        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        backend = self.backend
        url, options = backend.url, backend.settings
        # Like the app's pool: driver keys (sslmode...) stay in the DSN, covet's options go.
        passthrough = {k: v for k, v in url.query.items() if k in backend.driver_query_keys}
        dsn = url.without_query().replace("postgresql+asyncpg://", "postgresql://", 1)
        dsn = dsn.replace("postgres://", "postgresql://", 1)
        if passthrough:
            dsn += "?" + urllib.parse.urlencode(passthrough)
        server_settings = dict(options.get("server_settings") or {})
        if options.get("search_path"):
            server_settings["search_path"] = options["search_path"]
        server_settings.setdefault("application_name", "covet-migrations")

        async def create() -> Any:
            import asyncpg

            return await asyncpg.connect(dsn, server_settings=server_settings)

        return create_async_engine(
            "postgresql+asyncpg://", poolclass=NullPool, async_creator=create
        )

    def _lock_key(self) -> int:
        # pg_advisory_lock takes a signed 64-bit key.
        return int.from_bytes(self.migration_lock_id()[:8], "big", signed=True)

    def acquire_migration_lock(self, connection: Any, timeout: float) -> bool:
        """Poll ``pg_try_advisory_lock`` (session level) until it succeeds or ``timeout`` passes."""
        from sqlalchemy import text

        deadline = time.monotonic() + timeout
        query = text("SELECT pg_try_advisory_lock(:key)")
        while not connection.execute(query, {"key": self._lock_key()}).scalar():
            # End the transaction the query began, so the next poll sees fresh state.
            connection.commit()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def release_migration_lock(self, connection: Any) -> None:
        """Release the advisory lock."""
        from sqlalchemy import text

        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key()})

    def test_database_url(self, url: str, name: str) -> str:
        """Return ``url`` with ``search_path`` set to the test run's schema."""
        return url_with_option(url, "search_path", name)

    def create_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Create a schema: cheaper than a database, and needs no CREATEDB privilege."""
        return (f"CREATE SCHEMA {self.backend.ops.quote_name(name)}",)

    def drop_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Drop the schema with everything in it."""
        return (f"DROP SCHEMA IF EXISTS {self.backend.ops.quote_name(name)} CASCADE",)
