"""MySQL's migration engine, migration lock and test databases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covet.db.backends.base import BaseCreation, url_with_path

if TYPE_CHECKING:
    from covet.db.backends.mysql import MySQLBackend

__all__ = ("MySQLCreation",)


class MySQLCreation(BaseCreation):
    """MySQL's migration engine, ``GET_LOCK`` lock, and one database per test run."""

    backend: MySQLBackend

    def migration_engine(self) -> Any:
        """Return an aiomysql engine whose connections match the app's (charset, sql_mode)."""
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        url, options = self.backend.url, self.backend.settings

        async def create() -> Any:
            import aiomysql

            kwargs: dict[str, Any] = {
                "user": url.username or "root",
                "password": url.password or "",
                "db": url.database,
                "charset": "utf8mb4",
                "connect_timeout": options.get("connect_timeout", 10.0),
                "local_infile": False,
                "init_command": f"SET SESSION sql_mode = '{options.get('sql_mode', '')}'",
            }
            if options.get("unix_socket"):
                kwargs["unix_socket"] = options["unix_socket"]
            else:
                kwargs["host"] = url.host or "127.0.0.1"
                kwargs["port"] = url.port or 3306
            return await aiomysql.connect(**kwargs)

        return create_async_engine("mysql+aiomysql://", poolclass=NullPool, async_creator=create)

    def _lock_name(self) -> str:
        # MySQL lock names are at most 64 characters.
        return f"covet_migrations_{self.migration_lock_id().hex()[:32]}"

    def acquire_migration_lock(self, connection: Any, timeout: float) -> bool:
        """Wait up to ``timeout`` (whole seconds) for ``GET_LOCK``, a session-level lock."""
        from sqlalchemy import text

        got = connection.execute(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": self._lock_name(), "timeout": int(timeout)},
        ).scalar()
        return bool(got == 1)

    def release_migration_lock(self, connection: Any) -> None:
        """Release the ``GET_LOCK`` lock."""
        from sqlalchemy import text

        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self._lock_name()})

    def test_database_url(self, url: str, name: str) -> str:
        """Return ``url`` naming the test run's database."""
        return url_with_path(url, name)

    def create_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Create a database with the binary collation detected on connect."""
        quoted = self.backend.ops.quote_name(name)
        collation = self.backend.ops.text_collation
        return (f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE {collation}",)

    def drop_test_database_sql(self, name: str) -> tuple[str, ...]:
        """Drop the test run's database."""
        return (f"DROP DATABASE IF EXISTS {self.backend.ops.quote_name(name)}",)
