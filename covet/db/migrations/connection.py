"""How covet reaches the project's database: URL, async engine, connections.

Migrations use their own async engine (``NullPool``) over the app's driver
(``aiosqlite``, ``asyncpg``, ``aiomysql``) with the same connection options
the app's pool uses. The async work runs on a private event loop in a worker
thread (:func:`_run_async`), so the synchronous commands may be called from
anywhere, including from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

    from sqlalchemy.engine import Connection

    from covet.config import Settings
    from covet.db.database import Database
    from covet.db.exceptions import DatabaseError

__all__ = ()

_T = TypeVar("_T")

# -- connecting -----------------------------------------------------------------------------


@dataclass
class _Target:
    """How alembic reaches the project's database."""

    vendor: str
    dialect_name: str
    url: str
    display: str
    database: Database
    lock_key: int = 0
    lock_name: str = ""
    sqlite_path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _target(settings: Settings, *, url_override: str | None = None) -> _Target:
    from covet.db.database import Database

    database_url = url_override or settings.database_url
    if not database_url:
        raise ImproperlyConfigured(
            "No database is configured for migrations. Set DATABASE_URL (in the environment "
            "or .env) or database_url in [tool.covet]."
        )
    # An unconnected Database parses the URL and options exactly as the app does.
    database = Database(database_url, alias=f"covet-migrations-{id(settings)}")
    url = database.url
    vendor = database.vendor
    options = dict(database.settings)
    dialect_name = database.ops.sqlalchemy_dialect
    if not dialect_name:
        raise ImproperlyConfigured(
            f"Migrations do not support the {vendor!r} backend of {url}. "
            "Use SQLite, PostgreSQL or MySQL."
        )
    scope = f"{url.host}:{url.port}/{url.database}/{options.get('search_path') or ''}"
    digest = hashlib.sha256(f"covet.migrations:{scope}".encode()).digest()
    target = _Target(
        vendor=vendor,
        dialect_name=dialect_name,
        url=url.render_as_string(hide_password=False),
        display=str(url),
        database=database,
        lock_key=int.from_bytes(digest[:8], "big", signed=True),
        # MySQL lock names are at most 64 characters.
        lock_name=f"covet_migrations_{digest.hex()[:32]}",
        options=options,
    )
    if vendor == "sqlite" and url.database != ":memory:":
        target.sqlite_path = str(Path(url.database).resolve())
    return target


def _engine(target: _Target) -> Any:
    """Create an async engine (NullPool) whose connections match the app's driver setup."""
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    options = target.options
    if target.vendor == "sqlite":
        path = target.sqlite_path or ":memory:"
        engine = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            poolclass=NullPool,
            connect_args={"timeout": options.get("busy_timeout", 5000) / 1000},
        )

        # pysqlite would not BEGIN before DDL, so a failing revision could not be
        # rolled back; take over transaction control (SQLAlchemy's documented recipe).
        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if target.vendor == "postgres":
        return create_async_engine(
            "postgresql+asyncpg://", poolclass=NullPool, async_creator=_postgres_creator(target)
        )
    return create_async_engine(
        "mysql+aiomysql://", poolclass=NullPool, async_creator=_mysql_creator(target)
    )


def _postgres_creator(target: _Target) -> Callable[[], Coroutine[Any, Any, Any]]:
    import urllib.parse

    from covet.db.backends.postgres import PostgresBackend

    url = target.database.url
    options = target.options
    # Like the app's pool: driver keys (sslmode...) stay in the DSN, covet's options go.
    passthrough = {k: v for k, v in url.query.items() if k in PostgresBackend.driver_query_keys}
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

    return create


def _mysql_creator(target: _Target) -> Callable[[], Coroutine[Any, Any, Any]]:
    url = target.database.url
    options = target.options

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

    return create


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine on a private event loop in a worker thread and return its result.

    A worker thread works both from plain code and from inside a running loop
    (an app's startup, an async test), and leaves the caller's loop alone.
    """
    outcome: dict[str, Any] = {}

    def main() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=main, name="covet-migrations", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


async def _mysql_ops(target: _Target) -> Any:
    """Return MySQL operations refined from the server (its binary collation)."""
    from covet.db.database import Database

    probe = Database(target.url, alias=f"covet-migrations-probe-{id(target)}", min_size=1)
    await probe.connect()
    try:
        return probe.ops
    finally:
        await probe.disconnect()


def _read_heads(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    if connection.in_transaction():
        connection.rollback()
    return heads


@contextlib.asynccontextmanager
async def _connect(engine: Any, target: _Target) -> AsyncIterator[Any]:
    """Open a connection, turning a failure to connect into the backend's connect error."""
    connection = engine.connect()
    try:
        await connection.start()
    except Exception as exc:
        # OSError, or the driver's / SQLAlchemy's own class for a refused login.
        raise _unreachable(target, exc) from exc
    try:
        yield connection
    finally:
        await connection.close()


def _unreachable(target: _Target, exc: BaseException) -> DatabaseError:
    # The backend names the cause (server unreachable, no such database, login refused)
    # in the same words as when the app connects.
    error = getattr(exc, "orig", None) or exc
    # SQLAlchemy's asyncpg adapter wraps the driver's error in a DB-API class of its own.
    while error.__cause__ is not None and type(error).__module__.startswith("sqlalchemy"):
        error = error.__cause__
    return target.database.backend.translate_connect_error(error)


async def _database_heads(target: _Target) -> tuple[str, ...]:
    engine = _engine(target)
    try:
        async with _connect(engine, target) as connection:
            heads: tuple[str, ...] = await connection.run_sync(_read_heads)
            return heads
    finally:
        await engine.dispose()
