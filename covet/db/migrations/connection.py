"""How covet reaches the project's database: URL, async engine, connections.

Migrations use their own async engine (``NullPool``) over the app's driver
with the same connection options the app's pool uses; the backend builds it
(``creation.migration_engine()``). The async work runs on a private event loop in a worker
thread (:func:`_run_async`), so the synchronous commands may be called from
anywhere, including from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

    from sqlalchemy.engine import Connection

    from covet.config import Settings
    from covet.db.backends.base import BaseCreation, BaseFeatures
    from covet.db.database import Database
    from covet.db.exceptions import DatabaseError

__all__ = ()

_T = TypeVar("_T")

# -- connecting -----------------------------------------------------------------------------


@dataclass
class _Target:
    """How alembic reaches the project's database."""

    dialect_name: str
    url: str
    display: str
    database: Database

    @property
    def features(self) -> BaseFeatures:
        """The database's capability flags."""
        return self.database.features

    @property
    def creation(self) -> BaseCreation:
        """The backend's migration engine and lock."""
        return self.database.backend.creation


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
    dialect_name = database.ops.sqlalchemy_dialect
    if not dialect_name:
        raise ImproperlyConfigured(
            f"Migrations do not support the {database.vendor!r} backend of {url}. "
            "Use SQLite, PostgreSQL or MySQL."
        )
    return _Target(
        dialect_name=dialect_name,
        url=url.render_as_string(hide_password=False),
        display=str(url),
        database=database,
    )


def _engine(target: _Target) -> Any:
    """Create an async engine (NullPool) whose connections match the app's driver setup."""
    return target.creation.migration_engine()


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


async def _server_ops(target: _Target) -> Any:
    """Return the operations refined from the server (MySQL's flavour and binary collation)."""
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
